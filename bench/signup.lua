-- wrk script: POST /v1/signup with a new slug, email and client address on every request.
local counter = 0
local prefix

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  prefix = tostring(math.random(100000, 999999))
end

function request()
  counter = counter + 1
  local id = prefix .. "x" .. counter
  local body = '{"org_name":"Bench","slug":"b' .. id .. '","email":"u' .. id .. '@d' .. id ..
    '.example.com","plan":"starter"}'
  local address = "10." .. (counter % 250) .. "." .. (math.random(0, 250)) .. "." .. (math.random(1, 250))
  return wrk.format("POST", "/v1/signup",
    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = address}, body)
end

dofile(os.getenv("BENCH_DIR") .. "/percentiles.lua")
