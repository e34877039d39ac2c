#!/bin/sh
# The patch's size: lines added + removed, in Postfix's existing files and in all.
HERE=$(cd "$(dirname "$0")" && pwd)
awk '
/^diff /   { new = ($0 ~ /smtp_pipeconnect\.c/) }
/^(\+\+\+|---) / { next }
/^[+-]/    { all++; if (!new) existing++ }
END { printf "patch_lines=%d existing_files=%d new_file=%d\n", all, existing, all - existing }
' "$HERE/postfix-pipeconnect.patch"
