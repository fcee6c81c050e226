-- What each sandbox may reach, by listener name. Patterns use the allow-list
-- syntax (sluice.match): "host", "*.host" (subdomains only), "host:port", CIDRs.
local profiles = {
  agent = { "github.com", "*.github.com", "*.githubusercontent.com" },
  ci = { "registry.npmjs.org", "pypi.org", "files.pythonhosted.org" },
}

function on_connect(c)
  local allowed = profiles[c.listener]
  if allowed == nil then
    return { verdict = "deny", reason = "sandbox " .. c.listener .. " has no profile" }
  end
  for _, pattern in ipairs(allowed) do
    if sluice.match(c.host, pattern, c.port) then
      return "allow"
    end
  end
  return { verdict = "deny", reason = c.host .. " is not in the " .. c.listener .. " profile" }
end
