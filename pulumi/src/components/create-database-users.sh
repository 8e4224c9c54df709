# Creates or updates the service's and the migrations' MySQL users as the RDS master user, over
# verified TLS. Run by the ManagedDatabaseAccess Job (database-access.ts) with `bash -c`; idempotent,
# so a rerun after a password rotation sets the new passwords. No credential is ever on a command
# line: passwords are read from the mounted Secret, the master password reaches mysql in an option
# file on an in-memory volume, and the statements through a pipe.
set -euo pipefail
umask 077
q="'"
bs='\'
secret() { cat "$SECRETS_DIR/$1"; }
# A SQL string literal; under NO_BACKSLASH_ESCAPES only the quote needs doubling.
literal() {
  local value
  value=$(secret "$1")
  printf "'%s'" "${value//"$q"/"$q$q"}"
}
user_statements() {
  local password
  password=$(literal "$2")
  echo "CREATE USER IF NOT EXISTS '$1'@'%' IDENTIFIED BY $password REQUIRE SSL;"
  echo "ALTER USER '$1'@'%' IDENTIFIED BY $password REQUIRE SSL;"
  echo "GRANT $3 ON \`$MYSQL_DATABASE\`.* TO '$1'@'%';"
}
options=$(mktemp)
trap 'rm -f "$options"' EXIT
admin=$(secret mysql-root-password)
# Option files unescape backslashes inside quoted values.
printf '[client]\npassword="%s"\n' "${admin//"$bs"/"$bs$bs"}" >"$options"
{
  echo "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';"
  user_statements "$APP_USER" mysql-password "$APP_PRIVILEGES"
  user_statements "$MIGRATION_USER" mysql-migration-password "$MIGRATION_PRIVILEGES"
} | mysql --defaults-extra-file="$options" --host="$MYSQL_HOST" --port="$MYSQL_PORT" \
  --user="$MYSQL_ADMIN_USER" --ssl-mode=VERIFY_IDENTITY --ssl-ca="$MYSQL_CA_FILE" \
  --connect-timeout=10 --batch
echo "database users $APP_USER and $MIGRATION_USER are in place"
