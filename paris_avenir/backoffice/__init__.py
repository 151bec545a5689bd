"""The staff's back office (/pro): the pages and the services that compose the domains —
the dashboard and a youth's file, "À faire", the counter, the team, the ASE import and the
administration. It sits above every domain and nothing below imports it (the app and the CLI
do); the facts it shows are owned by the domains (staff/ owns accounts, assignments, scope and
tasks)."""
