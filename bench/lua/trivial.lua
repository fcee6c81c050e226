-- The trivial rule of the benchmark: one comparison, no opinion for anything else.
function on_connect(c)
  if c.host == "blocked.bench.test" then return "deny" end
  return nil
end
