-- wrk script: POST pre-signed requests, one per line of the file in SIGNED_FILE:
-- "<timestamp>\t<signature>\t<json body>". Each wrk thread walks the lines in turn; after
-- the last it starts again (then the service answers duplicates).
local lines = {}
for line in io.lines(os.getenv("SIGNED_FILE")) do
  local ts, sig, body = line:match("^(%d+)\t(%x+)\t(.*)$")
  lines[#lines + 1] = {ts, sig, body}
end
local i = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  i = i % #lines + 1
  local item = lines[i]
  return wrk.format(nil, nil, {
    ["Content-Type"] = "application/json",
    ["X-Hotline-Timestamp"] = item[1],
    ["X-Hotline-Signature"] = item[2],
  }, item[3])
end
