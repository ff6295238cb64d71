-- wrk script for bench/ingest_decide.py: POST /api/events, one event per request.
--
--   wrk -t2 -c8 -d15s -s bench/ingest_events.lua http://127.0.0.1:8765 -- <run-id> <page-views-per-lead>
--
-- Every request carries a fresh subject and idempotency key (`<run-id>-<thread>-<n>`), so every
-- lead.created event is new and triggers one decision. With page-views-per-lead = k > 0, each
-- lead is preceded by k page.viewed events on the same subject (one in three of them on
-- /pricing), which is closer to real traffic and gives the features some history to count.
--
-- `done` prints one line `BENCH_JSON {...}` with the counts and latency percentiles (µs) that
-- ingest_decide.py reads.

local thread_ids = 0

function setup(thread)
   thread:set("thread_id", thread_ids)
   thread_ids = thread_ids + 1
end

run_id = "run"
views_per_lead = 0
counter = 0
thread_id = 0

-- The API token ingest_decide.py made (scope review), from the environment.
local headers = { ["Content-Type"] = "application/json" }
if os.getenv("OPSLOOP_TOKEN") then
   headers["Authorization"] = "Bearer " .. os.getenv("OPSLOOP_TOKEN")
end
local sizes = { 4, 12, 40, 85, 150, 320, 700 }
local budgets = { 0, 1500, 4000, 5000, 12000, 30000 }

path = "/api/events"

function init(args)
   run_id = args[1] or "run"
   views_per_lead = tonumber(args[2] or "0")
   -- A third argument, `wait`, asks for the decisions in the answer (?wait=decision).
   if args[3] == "wait" then
      path = "/api/events?wait=decision"
   end
end

local function lead_created(n, subject)
   local size = sizes[(n % #sizes) + 1]
   local budget = budgets[(n % #budgets) + 1]
   return string.format(
      '{"type":"lead.created","subject":"%s",'
         .. '"traits":{"company_size":%d,"budget":%d,"email":"%s@example.com","company":"Co %d"},'
         .. '"payload":{"form":"contact","utm_source":"newsletter"},"idempotency_key":"%s"}',
      subject, size, budget, (subject:gsub(":", "-")), n, subject)
end

local function page_viewed(n, subject, i)
   local path = (i % 3 == 0) and "/pricing" or "/blog/how-to-" .. i
   return string.format(
      '{"type":"page.viewed","subject":"%s","payload":{"path":"%s","referrer":"google"},'
         .. '"idempotency_key":"%s/pv%d"}',
      subject, path, subject, i)
end

function request()
   local cycle = views_per_lead + 1
   local n = math.floor(counter / cycle)
   local step = counter % cycle
   counter = counter + 1
   local subject = string.format("lead:%s-%d-%d", run_id, thread_id, n)
   local body
   if step < views_per_lead then
      body = page_viewed(n, subject, step)
   else
      body = lead_created(n, subject)
   end
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99), latency:percentile(99.9), latency.max))
end
