-- The attacker of bench/sign_in_flood.py for wrk (Debian's wrk 4): failed sign-ins for unknown
-- addresses at the organization's domain, round-robin over client addresses sent in
-- X-Forwarded-For (the server trusts loopback as its proxy), each connection pausing so that
-- all of them together send about the asked rate (wrk is closed-loop: slower answers, fewer
-- requests; the bench prints the rate it got).
--   wrk -t1 -c<connections> -d<seconds> --timeout 30s -s bench/sign_in_flood.lua <url> -- \
--       <delay ms> <addresses> <domain> <csrf token> <csrf cookie>
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  pause = tonumber(args[1])
  addresses = tonumber(args[2])
  domain = args[3]
  csrf = args[4]
  cookie = "csrftoken=" .. args[5]
  n = id * 1000003
  counts = {}
end

function delay()
  return pause
end

function request()
  n = n + 1
  local a = n % addresses
  local ip = string.format("198.18.%d.%d", math.floor(a / 250), a % 250 + 1)
  local body = string.format(
    "email=user%d%%40%s&password=Summer%d%%21&csrfmiddlewaretoken=%s", n, domain, n, csrf
  )
  return wrk.format("POST", "/sign-in/", {
    ["X-Forwarded-For"] = ip,
    ["Cookie"] = cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
  }, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
  local e = summary.errors
  io.write(string.format(
    "errors connect %d read %d write %d timeout %d\n", e.connect, e.read, e.write, e.timeout
  ))
  -- wrk measures in microseconds
  io.write(string.format("latency p50 %d p95 %d p99 %d\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
