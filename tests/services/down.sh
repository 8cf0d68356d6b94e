#!/usr/bin/env bash
#
# Stops every server that tests/services/up.sh starts, each through its own
# script (so only processes named in our pid files are signalled), and
# removes the env files, which would otherwise point at stopped servers.
# The servers' data stays in tests/services/run/, so the next up.sh finds
# it again.
#
# Idempotent: stopping what is not running is not an error.
#
# Usage: tests/services/down.sh [--wipe]
#   --wipe  also delete tests/services/run/ (all data and logs) afterwards,
#           for a start from empty servers. Downloads stay cached.

set -euo pipefail
SERVICE=down
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

wipe=0
case "${1:-}" in
    "") ;;
    --wipe) wipe=1 ;;
    *) echo "usage: $0 [--wipe]" >&2; exit 2 ;;
esac

# Reverse order of up.sh. Every server is asked to stop even if an earlier
# one failed to, and the failure is reported at the end.
failed=()
for service in neo4j elasticsearch opensearch-secure opensearch redis; do
    "$SERVICES_DIR/$service.sh" stop || failed+=("$service")
done
rm -f "$RUN_DIR/env" "$RUN_DIR/services.env"

if [[ ${#failed[@]} -gt 0 ]]; then
    die "could not stop: ${failed[*]}"
fi
if [[ $wipe == 1 ]]; then
    rm -rf "$RUN_DIR"
    say "removed $RUN_DIR"
fi
