#!/usr/bin/env bash
# Checks docker-compose.yml and the Kubernetes overlays offline: compose's own parser, then
# `kubectl kustomize` for each overlay and the rendered objects against the Kubernetes 1.32
# schemas. Needs docker-compose (or docker compose), kubectl and kubernetes-validate
# (pip install kubernetes-validate).
set -euo pipefail
cd "$(dirname "$0")/.."
compose=(docker-compose)
command -v docker-compose >/dev/null || compose=(docker compose)
FLEETDESK_VAULT_MASTER_KEY=check "${compose[@]}" -f docker-compose.yml config -q
echo "docker-compose.yml: ok"
work=$(mktemp -d)
created=""
trap 'rm -rf "$work"; [ -z "$created" ] || rm -f "$created"' EXIT
# The dev overlay reads secrets.env, which is not committed; render it with the example.
if [ ! -f k8s/overlays/dev/secrets.env ]; then
  cp k8s/overlays/dev/secrets.env.example k8s/overlays/dev/secrets.env
  created=k8s/overlays/dev/secrets.env
fi
for overlay in dev production; do
  kubectl kustomize "k8s/overlays/$overlay" >"$work/$overlay.yaml"
done
kubernetes-validate --strict -k 1.32.0 --quiet "$work/dev.yaml" "$work/production.yaml"
echo "k8s overlays: ok"
