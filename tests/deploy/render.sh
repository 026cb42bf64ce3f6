#!/usr/bin/env bash
# Renders what a cluster or Docker engine would be given and checks its shape, without either:
#   - `docker-compose config` of docker-compose.yml: the services (postgres, redis, messages, presence,
#     gateway-1, gateway-2, nginx), health checks behind every `condition: service_healthy`, the load
#     balancer on 127.0.0.1:8080 with deploy/nginx/chat.conf, the named database volume, DEV_LOGIN=1;
#   - `kubectl kustomize` of deploy/k8s/base and each overlay: the three Deployments with resources,
#     non-root read-only securityContext, gRPC probes (messages, presence), HTTP probes and a preStop
#     (gateway), Services, the migration Job, PDB, HPA and NetworkPolicies; dev with PostgreSQL and
#     Redis StatefulSets and the dev login on; prod with an Ingress, the dev login off, no Secret.
#   tests/deploy/render.sh [OUTDIR]   also writes the renders to OUTDIR
# Exits 77 (skipped) when docker-compose or kubectl is missing outside CI; with CI=true it installs them
# from Debian (docker-compose, kubernetes-client). CHAT_KUBECTL / CHAT_COMPOSE pick other binaries.
set -euo pipefail
DEPLOY_TAG=render
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"

ensure_tools || exit $?
out=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0

# index FLAT > INDEXED: prefixes each flattened line with KIND/NAME of its document.
index_render() {
  awk 'BEGIN { FS = OFS = "\t" }
    FNR == NR { if ($2 == "kind") k[$1] = $3; if ($2 == "metadata.name") n[$1] = $3; next }
    { print k[$1] "/" n[$1], $2, $3 }' "$1" "$1"
}
# expect WHAT REGEX: one line of the current index matches REGEX (KIND/NAME<TAB>PATH<TAB>VALUE).
expect() {
  checks=$((checks + 1))
  if ! grep -qP -- "$2" "$tmp/index"; then
    dlog "FAIL $render: $1"
    failures=$((failures + 1))
  fi
}
# expect_not WHAT REGEX: no line matches.
expect_not() {
  checks=$((checks + 1))
  if grep -qP -- "$2" "$tmp/index"; then
    dlog "FAIL $render: $1: $(grep -P -- "$2" "$tmp/index" | sed -n 1p)"
    failures=$((failures + 1))
  fi
}

# ---- docker-compose.yml ------------------------------------------------------------------------
render=docker-compose.yml
before=$failures
if render_compose "$tmp/compose.yaml"; then
  flatten "$tmp/compose.yaml" | awk 'BEGIN { FS = OFS = "\t" } { print "compose", $2, $3 }' >"$tmp/index"
  for s in postgres redis messages presence gateway-1 gateway-2 nginx; do
    expect "service $s" "^compose\tservices\.$s\."
  done
  for s in messages presence gateway-1 gateway-2; do
    expect "$s runs chat-${s%-[12]}" "^compose\tservices\.$s\.command\.0\tchat-${s%-[12]}$"
    expect "$s has a healthcheck" "^compose\tservices\.$s\.healthcheck\.test\.1\tchat-healthcheck$"
    expect "$s builds the Dockerfile" "^compose\tservices\.$s\.build\.dockerfile\tDockerfile$"
  done
  # Every service something waits for as healthy has a health check.
  while IFS= read -r dep; do
    expect "$dep has a healthcheck (a service_healthy dependency)" "^compose\tservices\.$dep\.healthcheck\.test\."
  done < <(grep -oP '^compose\tservices\.[^.]+\.depends_on\.\K[^.]+(?=\.condition\tservice_healthy$)' "$tmp/index" | sort -u)
  expect_not "every depends_on waits for service_healthy" '^compose\tservices\.[^.]+\.depends_on\.[^.]+\.condition\t(?!service_healthy$)'
  # docker-compose 1.x prints the short syntax of ports and volumes, Compose v2 the long one.
  if ! grep -qP '^compose\tservices\.nginx\.ports\.0\t127\.0\.0\.1:8080:80(/tcp)?$' "$tmp/index"; then
    expect "nginx publishes 127.0.0.1:8080 (host_ip)" '^compose\tservices\.nginx\.ports\.0\.host_ip\t127\.0\.0\.1$'
    expect "nginx publishes 127.0.0.1:8080 (published)" '^compose\tservices\.nginx\.ports\.0\.published\t8080$'
    expect "nginx publishes 127.0.0.1:8080 (target)" '^compose\tservices\.nginx\.ports\.0\.target\t80$'
  fi
  if ! grep -qP '^compose\tservices\.nginx\.volumes\.0\t.*/deploy/nginx/chat\.conf:/etc/nginx/conf\.d/default\.conf:ro$' "$tmp/index"; then
    expect "nginx mounts deploy/nginx/chat.conf" '^compose\tservices\.nginx\.volumes\.0\.source\t.*/deploy/nginx/chat\.conf$'
    expect "nginx mounts it as conf.d/default.conf" '^compose\tservices\.nginx\.volumes\.0\.target\t/etc/nginx/conf\.d/default\.conf$'
  fi
  expect "nginx waits for gateway-1" '^compose\tservices\.nginx\.depends_on\.gateway-1\.condition\tservice_healthy$'
  expect "nginx waits for gateway-2" '^compose\tservices\.nginx\.depends_on\.gateway-2\.condition\tservice_healthy$'
  expect "postgres keeps its data in the named volume pgdata" '^compose\tservices\.postgres\.volumes\.0(\tpgdata:/var/lib/postgresql/data|\.source\tpgdata$)'
  expect "volume pgdata" '^compose\tvolumes\.pgdata(\t|\.)'
  expect "gateway-1 has the dev login on" '^compose\tservices\.gateway-1\.environment\.DEV_LOGIN\t1$'
  expect "gateway ids differ" '^compose\tservices\.gateway-2\.environment\.GATEWAY_ID\tgateway-2$'
  expect_not "only nginx publishes ports" '^compose\tservices\.(?!nginx\.)[^.]+\.ports\.'
  if [[ -n "$out" ]]; then mkdir -p "$out" && cp "$tmp/compose.yaml" "$out/docker-compose.yaml"; fi
  if ((failures == before)); then dlog "ok   docker-compose config"; fi
else
  dlog "FAIL docker-compose config"
  failures=$((failures + 1))
fi

# ---- kustomizations -------------------------------------------------------------------------------
for dir in "${K8S_DIRS[@]}"; do
  render=$dir
  before=$failures
  if ! render_k8s "$dir" "$tmp/k8s.yaml"; then
    dlog "FAIL kubectl kustomize $dir"
    failures=$((failures + 1))
    continue
  fi
  flatten "$tmp/k8s.yaml" >"$tmp/flat"
  index_render "$tmp/flat" >"$tmp/index"
  c='spec\.template\.spec\.containers\.0\.'
  for svc in gateway messages presence; do
    d="Deployment/chat-$svc"
    expect "$d" "^$d\t"
    expect "$d runs chat-$svc" "^$d\t${c}command\.0\tchat-$svc$"
    expect "Service chat-$svc" "^Service/chat-$svc\tspec\.selector\.app\.kubernetes\.io/name\tchat-$svc$"
    expect "$d runs as non-root" "^$d\tspec\.template\.spec\.securityContext\.runAsNonRoot\ttrue$"
    expect "$d has a read-only root filesystem" "^$d\t${c}securityContext\.readOnlyRootFilesystem\ttrue$"
    expect "$d forbids privilege escalation" "^$d\t${c}securityContext\.allowPrivilegeEscalation\tfalse$"
    for r in requests.cpu requests.memory limits.cpu limits.memory; do
      expect "$d sets resources.$r" "^$d\t${c}resources\.${r//./\\.}\t"
    done
    expect "$d sets terminationGracePeriodSeconds" "^$d\tspec\.template\.spec\.terminationGracePeriodSeconds\t[0-9]+$"
  done
  for svc in messages presence; do
    d="Deployment/chat-$svc"
    expect "$d has a gRPC readiness probe" "^$d\t${c}readinessProbe\.grpc\.port\t"
    expect "$d has a gRPC liveness probe" "^$d\t${c}livenessProbe\.grpc\.port\t"
    expect "only the gateway reaches chat-$svc (NetworkPolicy)" "^NetworkPolicy/chat-$svc\tspec\.ingress\.0\.from\.0\.podSelector\.matchLabels\.app\.kubernetes\.io/name\tchat-gateway$"
  done
  d=Deployment/chat-gateway
  expect "$d readiness probe GET /readyz" "^$d\t${c}readinessProbe\.httpGet\.path\t/readyz$"
  expect "$d liveness probe GET /healthz" "^$d\t${c}livenessProbe\.httpGet\.path\t/healthz$"
  expect "$d preStop sleeps so it drains" "^$d\t${c}lifecycle\.preStop\.exec\.command\.0\tsleep$"
  expect "PodDisruptionBudget for the gateway" "^PodDisruptionBudget/chat-gateway\tspec\.selector\.matchLabels\.app\.kubernetes\.io/name\tchat-gateway$"
  expect "HorizontalPodAutoscaler for the gateway" "^HorizontalPodAutoscaler/chat-gateway\tspec\.scaleTargetRef\.name\tchat-gateway$"
  expect "migration Job runs chat-messages" "^Job/chat-migrate\t${c}command\.0\tchat-messages$"
  expect "migration Job sets MIGRATE_ONLY" "^Job/chat-migrate\t${c}env\.[0-9]+\.name\tMIGRATE_ONLY$"
  expect "ConfigMap chat-gateway" "^ConfigMap/chat-gateway(-[a-z0-9]+)?\tdata\.GATEWAY_HTTP_ADDR\t"
  case "$dir" in
    */dev)
      expect "namespace chat-dev" "^Deployment/chat-gateway\tmetadata\.namespace\tchat-dev$"
      expect "PostgreSQL StatefulSet" '^StatefulSet/chat-postgres\tspec\.template\.spec\.containers\.0\.image\tpostgres:'
      expect "Redis StatefulSet" '^StatefulSet/chat-redis\tspec\.template\.spec\.containers\.0\.image\tredis:'
      expect "dev login on" '^ConfigMap/chat-gateway-[a-z0-9]+\tdata\.DEV_LOGIN\t1$'
      expect "Secret chat-secrets with JWT_SECRET" '^Secret/chat-secrets-[a-z0-9]+\tdata\.JWT_SECRET\t'
      ;;
    */prod)
      expect "namespace chat" "^Deployment/chat-gateway\tmetadata\.namespace\tchat$"
      expect "dev login off" '^ConfigMap/chat-gateway-[a-z0-9]+\tdata\.DEV_LOGIN\t0$'
      expect "Ingress to the gateway" '^Ingress/chat-gateway\tspec\.rules\.0\.http\.paths\.0\.backend\.service\.name\tchat-gateway$'
      expect "Ingress read timeout for WebSocket" '^Ingress/chat-gateway\tmetadata\.annotations\.nginx\.ingress\.kubernetes\.io/proxy-read-timeout\t3600$'
      expect_not "no StatefulSet (PostgreSQL and Redis are external)" '^StatefulSet/'
      expect_not "no Secret in the overlay (chat-secrets is created outside git)" '^Secret/'
      expect_not "no image tag 'local'" "^[^\t]+\t.*containers\.[0-9]+\.image\t.*:local$"
      ;;
  esac
  if [[ -n "$out" ]]; then mkdir -p "$out" && cp "$tmp/k8s.yaml" "$out/$(tr / _ <<<"${dir#deploy/k8s/}").yaml"; fi
  ((failures > before)) || dlog "ok   kubectl kustomize $dir ($(grep -c '^kind: ' "$tmp/k8s.yaml") objects)"
done

if ((failures > 0)); then
  dlog "render: $failures of $checks checks FAILED"
  exit 1
fi
dlog "render: all $checks checks passed (docker-compose $("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'), kubectl $("$KUBECTL" version --client 2>/dev/null | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | sed -n 1p))"
