#!/usr/bin/env bash
# Fetch the upstream schemas the chart tests validate against (the same files,
# at the same tags, as shared/schemas beside a development checkout) into DIR,
# and print the export line for PIZZA_SCHEMAS_DIR.
#   .github/scripts/fetch-schemas.sh "$RUNNER_TEMP/schemas"
set -euo pipefail
DIR="${1:?usage: fetch-schemas.sh DIR}"
STRIMZI=1.2.0
PROM_OPERATOR=v0.93.0
KEDA=v2.20.2
SKAFFOLD=v2.24.0
GH=https://raw.githubusercontent.com

fetch() {  # url dest
  mkdir -p "$(dirname "$2")"
  curl -fsSL --retry 3 -o "$2" "$1"
}

for f in 040-Crd-kafka.yaml 043-Crd-kafkatopic.yaml 044-Crd-kafkauser.yaml 045-Crd-kafkanodepool.yaml; do
  fetch "$GH/strimzi/strimzi-kafka-operator/$STRIMZI/packaging/install/cluster-operator/$f" "$DIR/strimzi-$STRIMZI/$f"
done
for kind in servicemonitors podmonitors prometheusrules; do
  f="monitoring.coreos.com_$kind.yaml"
  fetch "$GH/prometheus-operator/prometheus-operator/$PROM_OPERATOR/example/prometheus-operator-crd/$f" \
    "$DIR/prometheus-operator-$PROM_OPERATOR/$f"
done
for kind in scaledobjects triggerauthentications; do
  f="keda.sh_$kind.yaml"
  fetch "$GH/kedacore/keda/$KEDA/config/crd/bases/$f" "$DIR/keda-$KEDA/$f"
done
fetch "$GH/GoogleContainerTools/skaffold/$SKAFFOLD/docs-v2/content/en/schemas/v4beta14.json" \
  "$DIR/skaffold-$SKAFFOLD/v4beta14.json"
echo "PIZZA_SCHEMAS_DIR=$DIR"
