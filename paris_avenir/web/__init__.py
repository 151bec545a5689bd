"""Web shell: templating, fragments, i18n, security headers, CSRF, static assets."""
