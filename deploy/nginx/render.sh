#!/bin/sh
# Render an nginx template: deploy/nginx/render.sh TEMPLATE OUTPUT
#
# Replaces the ${MAMORI_...} variables the template names with their values from the
# environment, and only those (nginx's own $host, $remote_addr ... stay). A variable that is
# unset or empty stops the rendering with its name: an empty value would make a broken config.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 TEMPLATE OUTPUT" >&2
    exit 2
fi
template=$1
output=$2
names=$(grep -o '\${MAMORI_[A-Z0-9_]*}' "$template" | sort -u | tr -d '${}')
for name in $names; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "$0: $name is not set (needed by $template)" >&2
        exit 1
    fi
done
shell_format=$(for name in $names; do printf '${%s} ' "$name"; done)
envsubst "$shell_format" < "$template" > "$output.tmp"
mv "$output.tmp" "$output"
