"""The accounts app's pages, one module per area (accounts/urls.py routes them):

- sign_in: sign-in (password, then the two-step code) and sign-out
- profile: Profile and Profile → Security (the person's own methods and sessions)
- mfa: setting up an authenticator app, backup codes, removing a method
- passwords: changing one's password, resetting a forgotten one
- activity: Profile → Activity Log, Settings → Security → Audit Log, one event's page
- members: Settings → Security and its Members page (roles, MFA policy, unlock, sign-out, reset)
- domains: Settings → Security → Email domains (list, verify by DNS, remove)
- throttling: Settings → Security → Sign-in throttling (limits and allowlist)
"""
