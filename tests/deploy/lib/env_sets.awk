# Reads flattened YAML (yaml_flatten.awk) of a kustomize render (MODE=k8s) or of `docker-compose config`
# (MODE=compose) and prints what each chat container is given:
#   UNIT <TAB> PROCESS <TAB> NAME <TAB> HOW <TAB> VALUE
# UNIT names the container ("Deployment/chat-gateway[gateway]", "service gateway-1"), PROCESS is
# gateway, messages or presence (from the command, or the image's default command chat-gateway), HOW
# is literal, secret (VALUE = secret/key), configmapkey, field or other. Also prints
#   #service <TAB> NAME <TAB> PORT         for every Service port (k8s) or compose service (PORT "*")
#   #missing <TAB> UNIT <TAB> WHAT         for references to ConfigMaps/Secrets/keys not in the render
#   #ports <TAB> UNIT <TAB> PORT           for every containerPort of a chat container (k8s)
# Pass the flattened file twice (the first pass collects ConfigMaps, Secrets and Services).
BEGIN { FS = OFS = "\t" }
function proc_of(cmd, image) {
  sub(/^.*\//, "", cmd)
  if (cmd ~ /^chat-(gateway|messages|presence)$/) return substr(cmd, 6)
  if (cmd == "" && image ~ /(^|\/)chat-suite(:|@|$)/) return "gateway"
  return ""
}
FNR == NR {
  d = $1; p = $2; v = $3
  if (p == "kind") kind[d] = v
  if (p == "metadata.name") name[d] = v
  if (p ~ /^data\./ || p ~ /^stringData\./) { k = p; sub(/^[^.]*\./, "", k); keys[d, k] = 1; data[d, k] = v }
  if (p ~ /^spec\.ports\.[0-9]+\.port$/) svcport[d, v] = 1
  next
}
FNR == 1 && !indexed {
  for (d in kind) {
    if (kind[d] == "ConfigMap") cm[name[d]] = d
    if (kind[d] == "Secret") sec[name[d]] = d
    if (kind[d] == "Service") {
      print "#service", name[d], ""
      for (x in svcport) { split(x, xs, SUBSEP); if (xs[1] == d) print "#service", name[d], xs[2] }
    }
  }
  indexed = 1
}
MODE == "compose" {
  if (match($2, /^services\.[^.]+\./)) {
    svc = substr($2, 10, RLENGTH - 10)
    rest = substr($2, RLENGTH + 1)
    if (!(svc in seen)) { seen[svc] = 1; order[++nsvc] = svc; print "#service", svc, "*" }
    if (rest == "command.0" || rest == "command") cmd[svc] = $3
    if (rest == "image") img[svc] = $3
    if (rest ~ /^environment\./) { k = rest; sub(/^environment\./, "", k); env[svc, k] = $3; envk[svc] = envk[svc] SUBSEP k }
  }
  next
}
MODE == "k8s" {
  d = $1; p = $2; v = $3
  if (!match(p, /^(spec\.template\.spec|spec\.jobTemplate\.spec\.template\.spec|spec)\.(initContainers|containers)\.[0-9]+\./)) next
  c = d "@" substr(p, 1, RLENGTH - 1)
  rest = substr(p, RLENGTH + 1)
  if (!(c in cseen)) { cseen[c] = 1; corder[++nc] = c; cdoc[c] = d }
  if (rest == "name") cname[c] = v
  if (rest == "command.0") ccmd[c] = v
  if (rest == "image") cimg[c] = v
  if (rest ~ /^ports\.[0-9]+\.containerPort$/) cports[c] = cports[c] SUBSEP v
  if (match(rest, /^env\.[0-9]+\./)) {
    e = c "@" substr(rest, 1, RLENGTH - 1)
    f = substr(rest, RLENGTH + 1)
    if (!(e in eseen)) { eseen[e] = 1; elist[c] = elist[c] "|" e }
    if (f == "name") ename[e] = v
    else if (f == "value") { evalue[e] = v; ehow[e] = "literal" }
    else if (f == "valueFrom.secretKeyRef.name") { esec[e] = v; ehow[e] = "secret" }
    else if (f == "valueFrom.secretKeyRef.key") esk[e] = v
    else if (f == "valueFrom.configMapKeyRef.name") { ecm[e] = v; ehow[e] = "configmapkey" }
    else if (f == "valueFrom.configMapKeyRef.key") ecmk[e] = v
    else if (f ~ /^valueFrom\.(fieldRef|resourceFieldRef)\./) ehow[e] = "field"
  }
  if (match(rest, /^envFrom\.[0-9]+\./)) {
    e = substr(rest, 1, RLENGTH - 1)
    f = substr(rest, RLENGTH + 1)
    if (f == "configMapRef.name") efrom[c] = efrom[c] SUBSEP "cm:" v
    if (f == "secretRef.name") efrom[c] = efrom[c] SUBSEP "secret:" v
  }
}
END {
  if (MODE == "compose") {
    for (i = 1; i <= nsvc; i++) {
      s = order[i]
      pr = proc_of(cmd[s], img[s])
      if (pr == "") continue
      n = split(envk[s], ks, SUBSEP)
      for (j = 2; j <= n; j++) print "service " s, pr, ks[j], "literal", env[s, ks[j]]
      print "#unit", "service " s, pr
    }
    exit
  }
  for (i = 1; i <= nc; i++) {
    c = corder[i]
    pr = proc_of(ccmd[c], cimg[c])
    if (pr == "") continue
    d = cdoc[c]
    unit = kind[d] "/" name[d] "[" cname[c] "]"
    print "#unit", unit, pr
    n = split(cports[c], ps, SUBSEP)
    for (j = 2; j <= n; j++) print "#ports", unit, ps[j]
    # envFrom first: explicit env entries override them, as in Kubernetes.
    n = split(efrom[c], fs, SUBSEP)
    for (j = 2; j <= n; j++) {
      ref = fs[j]; isc = (ref ~ /^cm:/); sub(/^[a-z]+:/, "", ref)
      if (isc && !(ref in cm)) { print "#missing", unit, "ConfigMap " ref; continue }
      if (!isc && !(ref in sec)) { print "#external", unit, "Secret " ref " (envFrom; keys unknown)"; continue }
      src = isc ? cm[ref] : sec[ref]
      for (x in keys) {
        split(x, xs, SUBSEP)
        if (xs[1] != src) continue
        print unit, pr, xs[2], (isc ? "literal" : "secret"), (isc ? data[src, xs[2]] : ref "/" xs[2])
      }
    }
    n = split(elist[c], es, "|")
    for (j = 2; j <= n; j++) {
      e = es[j]
      how = (e in ehow) ? ehow[e] : "literal"
      if (how == "secret") {
        if (!(esec[e] in sec)) print "#external", unit, "Secret " esec[e]
        else if (!((sec[esec[e]], esk[e]) in keys)) print "#missing", unit, "key " esk[e] " of Secret " esec[e]
        print unit, pr, ename[e], how, esec[e] "/" esk[e]
      } else if (how == "configmapkey") {
        if (!(ecm[e] in cm) || !((cm[ecm[e]], ecmk[e]) in keys)) print "#missing", unit, "key " ecmk[e] " of ConfigMap " ecm[e]
        print unit, pr, ename[e], how, ecm[e] "/" ecmk[e]
      } else {
        print unit, pr, ename[e], how, evalue[e]
      }
    }
  }
}
