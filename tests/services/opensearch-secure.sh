#!/usr/bin/env bash
#
# Runs a second OpenSearch node for netwar's integration tests, this one with
# the security plugin: HTTPS and basic authentication, the way production
# clusters are usually set up.
#
# Owns: one single-node OpenSearch on https://127.0.0.1:9203 (transport on
# 9303), with its configuration, test certificates, data and logs under
# tests/services/run/opensearch-secure/ and its pid file there.
#   user:     admin
#   password: $NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD (default netwar-Test-Passw0rd)
#   CA:       tests/services/run/opensearch-secure/config/ca.pem
#
# All the work is done by opensearch.sh; this script only selects its secure
# variant, so that both nodes can run side by side.
#
# Usage: tests/services/opensearch-secure.sh {start|stop|restart|status|prepare}

set -euo pipefail
NETWAR_OPENSEARCH_SECURE=1 exec "$(dirname "${BASH_SOURCE[0]}")/opensearch.sh" "$@"
