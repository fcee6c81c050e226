-- The rule script of tests/data/full.yaml.
function on_connect(c)
  return nil
end
