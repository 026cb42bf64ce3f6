-- append_batch's statements are planned once, not on every call. PL/pgSQL keeps custom plans when the
-- generic one's estimate looks worse, and with array parameters it always does: profiled at 1,000
-- sends/s (about one message per commit), 36 % of the PostgreSQL backend's CPU was the planner
-- re-planning the big statement of 004 for each batch. The statement probes indexes row by row
-- (LATERAL ... LIMIT 1), so the generic plan is the same plan at any batch size.
-- A later CREATE OR REPLACE of append_batch drops this setting: repeat it there.
ALTER FUNCTION append_batch(text[], text[], text[], text[]) SET plan_cache_mode = force_generic_plan;
