-- append_batch and join_rooms keep one plan per connection (005, 006). A plan made while a table was
-- small can read it whole, and keep doing so after it has grown, until autoanalyze comes round: with
-- room_members at 50 rows when join_rooms was first planned, 30 joins took 358-401 ms once the table
-- held 200,000 rows (1.2 and 0.8 ms with this setting). Both functions are written as index probes per
-- row; with sequential scans priced out the plan stays that, whatever the table's size at planning.
ALTER FUNCTION append_batch(text[], text[], text[], text[]) SET enable_seqscan = off;
ALTER FUNCTION join_rooms(text[], text[]) SET enable_seqscan = off;
