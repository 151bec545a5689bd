#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh into a fresh database and a fresh upload
# directory, then check it with the keys. See docs/operations.md.
#
#   deploy/restore.sh BACKUP
#
# With the settings the platform will run with: PARIS_AVENIR_DATABASE_URL (PostgreSQL: a
# database just created, empty; SQLite: a file that does not exist yet),
# PARIS_AVENIR_UPLOAD_DIR (absent or empty), PARIS_AVENIR_ENCRYPTION_KEYS (the key list kept
# apart from the backups), PARIS_AVENIR_SECRET_KEY, PARIS_AVENIR_ENV. PARIS_AVENIR_CLI
# names the console script if it is not `paris-avenir` on the PATH.
set -euo pipefail

backup=${1:?usage: restore.sh BACKUP}
url=${PARIS_AVENIR_DATABASE_URL:?PARIS_AVENIR_DATABASE_URL is not set}
uploads=${PARIS_AVENIR_UPLOAD_DIR:?PARIS_AVENIR_UPLOAD_DIR is not set}
cli=${PARIS_AVENIR_CLI:-paris-avenir}
[ -d "$backup/uploads" ] || { echo "restore.sh: $backup is not a backup (no uploads/)" >&2; exit 2; }
if [ -d "$uploads" ] && [ -n "$(ls -A "$uploads")" ]; then
  echo "restore.sh: $uploads is not empty: restore into a fresh upload directory" >&2
  exit 2
fi

umask 077

# 1. The database.
case "$url" in
  postgres://* | postgresql://* | postgresql+*://*)
    # One transaction: a failed restore leaves the database empty, not half full. The
    # objects belong to the role restoring (the platform's), whatever they belonged to.
    pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
      --dbname="postgresql://${url#*://}" "$backup/database.dump"
    ;;
  sqlite:///*)
    target=${url#sqlite:///}
    if [ -e "$target" ]; then
      echo "restore.sh: $target exists: restore into a new file" >&2
      exit 2
    fi
    mkdir -p "$(dirname "$target")"
    cp "$backup/database.sqlite3" "$target"
    ;;
  *)
    echo "restore.sh: PARIS_AVENIR_DATABASE_URL is neither PostgreSQL nor SQLite" >&2
    exit 2
    ;;
esac

# 2. The files, with their dates (the hourly sweep judges a file's age by them).
mkdir -p -m 700 "$uploads"
rsync --archive "$backup/uploads/" "$uploads/"

# 3. The schema of the code that will run (a no-op when the backup is as recent).
"$cli" migrate

# 4. Every document read back and every encrypted column tried with the keys: fails (1) with
# what is unreadable when the keys are not the data's.
"$cli" check-data
