-- wrk script: POST a JSON body (from the file in BODY_FILE) whose "__N__" is replaced by a
-- number unique to each request, so the service's double-submit guard never merges them.
local file = assert(io.open(os.getenv("BODY_FILE"), "r"))
local template = file:read("*a")
file:close()
local counter = 0
local thread_id = tostring(math.random(1, 1e9))

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local extra = os.getenv("EXTRA_HEADERS")  -- "Name: value|Name2: value2"
if extra then
  for pair in string.gmatch(extra, "[^|]+") do
    local name, value = pair:match("^%s*([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

request = function()
  counter = counter + 1
  local body = template:gsub("__N__", thread_id .. "-" .. counter)
  return wrk.format(nil, nil, nil, body)
end
