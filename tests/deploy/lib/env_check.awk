# Checks what a render gives the chat containers (env_sets.awk output) against what the code reads
# (code_env_table). Files: the code table, then the sets. Vars: RENDER (name in messages), CHECK_ADDR
# (1: client addresses must name a Service/compose service of the render). Prints "FAIL ..." lines,
# "note ..." lines, and last "units N vars M failures F".
BEGIN {
  FS = OFS = "\t"
  # Required by the binaries (README "Configuration"): the gateway refuses to start without a JWT
  # secret; messages without DATABASE_URL would talk to a database on localhost.
  required["gateway"] = "JWT_SECRET"
  required["messages"] = "DATABASE_URL"
  # Deployment-specific values that may differ from the defaults in code.
  split("REDIS_ADDR MESSAGES_ADDR PRESENCE_ADDR DATABASE_URL JWT_SECRET GATEWAY_ID DEV_LOGIN WEB_ROOT MIGRATE_ONLY", a, " ")
  for (i in a) specific[a[i]] = 1
  # Different per replica or per unit by design.
  split("GATEWAY_ID MIGRATE_ONLY", a, " ")
  for (i in a) perunit[a[i]] = 1
  # Addresses the processes connect to (host:port).
  split("REDIS_ADDR MESSAGES_ADDR PRESENCE_ADDR", a, " ")
  for (i in a) client[a[i]] = 1
  fails = 0
}
function fail(msg) { print "FAIL " RENDER ": " msg; fails++ }
function is_bool(v) { v = tolower(v); return v ~ /^(1|0|true|false|yes|no|on|off)$/ }
function norm_bool(v) { v = tolower(v); return (v ~ /^(1|true|yes|on)$/) ? 1 : 0 }
FNR == NR {
  read[$1, $2] = 1; type[$1, $2] = $3; def[$1, $2] = $4; min[$1, $2] = $5; max[$1, $2] = $6
  readers[$2] = readers[$2] (readers[$2] == "" ? "" : ", ") "chat-" $1
  next
}
$1 == "#service" { svc[$2] = 1; if ($3 != "") svcport[$2, $3] = 1; next }
$1 == "#unit" { unit[$2] = $3; nunits++; next }
$1 == "#ports" { hasports[$2] = 1; cport[$2, $3] = 1; next }
$1 == "#missing" { fail($2 " refers to " $3 ", which is not in the render"); next }
$1 == "#external" { note[$2 " uses " $3 " from outside the render"] = 1; next }
{
  u = $1; pr = $2; n = $3; how = $4; v = $5
  set[u, n] = 1
  nvars++
  if (!((pr, n) in read)) {
    fail(u " sets " n ", which chat-" pr " does not read" (readers[n] != "" ? " (" readers[n] " does)" : ""))
    next
  }
  if (how != "literal") next
  t = type[pr, n]
  if (v == "") { fail(u " sets " n " to an empty value (the code treats that as unset)"); next }
  if (t == "Int") {
    if (v !~ /^-?[0-9]+$/) fail(u " sets " n "=" v ": not an integer")
    else if ((min[pr, n] != "" && v + 0 < min[pr, n] + 0) || (max[pr, n] != "" && v + 0 > max[pr, n] + 0))
      fail(u " sets " n "=" v ": outside [" min[pr, n] ", " max[pr, n] "] that chat-" pr " accepts")
  }
  if (t == "Bool" && !is_bool(v)) fail(u " sets " n "=" v ": not a boolean (1/0/true/false/yes/no/on/off)")
  if (n == "JWT_SECRET" && length(v) < 16) fail(u " sets JWT_SECRET shorter than 16 characters")
  d = def[pr, n]
  if (!(n in specific) && d != "?") {
    same = (t == "Bool") ? (is_bool(v) && norm_bool(v) == d + 0) : (t == "Int" ? (v + 0 == d + 0) : (v == d))
    if (!same) fail(u " sets " n "=" v ", but the default in chat-" pr "'s code is '" d "' (keep them equal, or list " n " as deployment-specific in tests/deploy/lib/env_check.awk)")
  }
  if (!(n in perunit)) {
    if ((n in firstval) && firstval[n] != v)
      fail(n " differs between units: " firstunit[n] " has '" firstval[n] "', " u " has '" v "'")
    else if (!(n in firstval)) { firstval[n] = v; firstunit[n] = u }
  }
  if (CHECK_ADDR && (n in client) && match(v, /:[0-9]+$/)) {
    host = substr(v, 1, RSTART - 1); port = substr(v, RSTART + 1)
    if (host !~ /\./ && host != "localhost" && host !~ /^\[/) {
      if (!(host in svc)) fail(u " sets " n "=" v ", but the render has no service '" host "'")
      else if (!((host, "*") in svcport) && !((host, port) in svcport)) fail(u " sets " n "=" v ", but Service " host " has no port " port)
    }
  }
  if (hasports[u] && v ~ /^(0\.0\.0\.0|\[::\]|\*)?:[0-9]+$/) {
    port = v; sub(/^.*:/, "", port)
    if (!((u, port) in cport)) fail(u " listens on " v " (" n ") but declares no containerPort " port)
  }
}
END {
  for (u in unit) {
    r = required[unit[u]]
    if (r != "" && !((u, r) in set)) fail(u " does not set " r ", which chat-" unit[u] " requires")
  }
  # Variables a process reads that no unit of the render sets: the code default applies. Not a
  # failure, but DESIGN.md wants the defaults repeated in docker-compose.yml and deploy/k8s.
  for (u in unit) has[unit[u]] = 1
  for (k in read) {
    split(k, ks, SUBSEP)
    if (!(ks[1] in has) || ks[2] == "MIGRATE_ONLY" || ks[2] == "GATEWAY_ID") continue
    found = 0
    for (u in unit) if (unit[u] == ks[1] && ((u, ks[2]) in set)) found = 1
    if (!found) unset[ks[1]] = unset[ks[1]] " " ks[2]
  }
  for (p in unset) note["chat-" p " gets its code default for" unset[p]] = 1
  for (m in note) print "note " RENDER ": " m
  print "units", nunits + 0, "vars", nvars + 0, "failures", fails
}
