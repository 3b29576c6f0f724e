# Sourced by compare.sh and compat-official-clients.sh: the official api.video clients both
# measure, pinned once so the benchmark and the compatibility check always run the same versions.
PY_CLIENT="api.video==1.4.7"
NODE_CLIENT="@api.video/nodejs-client@2.6.8"

# install_python_client DIR: a venv in DIR/venv with PY_CLIENT.
install_python_client() {
  python3 -m venv "$1/venv"
  "$1/venv/bin/pip" install --quiet --disable-pip-version-check "$PY_CLIENT"
}

# install_node_client DIR: NODE_CLIENT in DIR/node/node_modules.
install_node_client() {
  mkdir -p "$1/node"
  (cd "$1/node" && npm install --silent --no-audit --no-fund --no-save "$NODE_CLIENT" >/dev/null)
}
