// Passkeys (WebAuthn). Each form marked data-passkey="create" or "get" asks its data-options-url
// (a POST, answered with the options as JSON; the challenge waits in the server's session), lets
// the browser create or use a passkey, puts the browser's answer in the form's hidden
// "credential" field and submits the form, whose answer is an ordinary redirect or page.
// Without JavaScript or WebAuthn the forms stay hidden and the other ways to sign in remain.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  function bytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var text = atob(base64);
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) {
      out[i] = text.charCodeAt(i);
    }
    return out.buffer;
  }

  function base64url(buffer) {
    var view = new Uint8Array(buffer);
    var text = "";
    for (var i = 0; i < view.length; i++) {
      text += String.fromCharCode(view[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: bytes(item.id), transports: item.transports };
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = bytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: bytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return { publicKey: options };
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = bytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return { publicKey: options };
  }

  // The browser's answer as the JSON the server reads (WebAuthn's RegistrationResponseJSON and
  // AuthenticationResponseJSON).
  function answer(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: base64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: base64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      out.response.attestationObject = base64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = base64url(response.authenticatorData);
      out.response.signature = base64url(response.signature);
      if (response.userHandle) {
        out.response.userHandle = base64url(response.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  function say(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) {
      status.textContent = text;
      status.hidden = !text;
    }
  }

  function failure(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey was not used: the request was cancelled or timed out. Try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already holds a passkey for your account.";
    }
    if (error && error.name === "SecurityError") {
      return "Passkeys do not work at this address. Open the site at its usual address.";
    }
    return (error && error.message) || "The passkey did not work. Try again.";
  }

  function run(form) {
    var create = form.getAttribute("data-passkey") === "create";
    var token = form.querySelector("input[name=csrfmiddlewaretoken]");
    var button = form.querySelector("button[type=submit]");
    say(form, "");
    if (button) {
      button.disabled = true;
    }
    return fetch(form.getAttribute("data-options-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "", Accept: "application/json" }
    })
      .then(function (reply) {
        return reply.json().then(function (json) {
          if (!reply.ok) {
            throw new Error(json.error || "The passkey could not be started. Reload the page.");
          }
          return json;
        });
      })
      .then(function (json) {
        return create
          ? navigator.credentials.create(creationOptions(json))
          : navigator.credentials.get(requestOptions(json));
      })
      .then(function (credential) {
        form.querySelector("input[name=credential]").value = answer(credential);
        form.submit();
      })
      .catch(function (error) {
        say(form, failure(error));
        if (button) {
          button.disabled = false;
        }
      });
  }

  document.querySelectorAll("[data-passkey-unsupported]").forEach(function (note) {
    note.hidden = true;
  });
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run(form);
    });
  });
})();
