#!/usr/bin/env bash
# Makes the 'stratuslab' command usable once the server runs (scripts/run.sh calls it):
#  - a symlink on PATH: /usr/local/bin/stratuslab as root, else ~/.local/bin/stratuslab (STRATUSLAB_BIN_DIR overrides);
#  - the client config ~/.config/stratuslab/client.json with the endpoint and the server's admin token, found in
#    $STRATUSLAB_DATA/admin.token (the server's --data-dir) or the default data dir;
#  - an SSH key stored as your default key pair (made with ssh-keygen if you have none), so every VM can be entered.
# Usage: scripts/setup-client.sh BINARY ENDPOINT
set -euo pipefail
binary=$1
endpoint=$2

if [[ -n "${STRATUSLAB_BIN_DIR:-}" ]]; then bin=$STRATUSLAB_BIN_DIR
elif [[ $EUID -eq 0 ]]; then bin=/usr/local/bin
else bin=$HOME/.local/bin; fi
mkdir -p "$bin"
ln -sfn "$binary" "$bin/stratuslab"
echo "setup-client: the 'stratuslab' command is $bin/stratuslab (-> $binary)" >&2
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "setup-client: $bin is not on your PATH; add it with: export PATH=\"$bin:\$PATH\"" >&2 ;;
esac

"$binary" login --admin-token --endpoint "$endpoint" >&2

# No VM nobody can log in to: the user's key pair is stored (and made if there is none) before anything boots.
if ! "$binary" describe-keys --json | grep -q '"name"'; then
  pub=
  for k in id_ed25519 id_ecdsa id_rsa; do [[ -f ~/.ssh/$k.pub ]] && { pub=~/.ssh/$k.pub; break; }; done
  if [[ -z "$pub" ]]; then
    mkdir -p ~/.ssh && chmod 700 ~/.ssh
    ssh-keygen -q -t ed25519 -N "" -C "stratuslab@$(hostname)" -f ~/.ssh/id_ed25519
    pub=~/.ssh/id_ed25519.pub
    echo "setup-client: made an SSH key pair for you: ~/.ssh/id_ed25519" >&2
  fi
  "$binary" key-import default "$pub" >&2
fi
