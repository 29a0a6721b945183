"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the mail tests. Placeholder: helper task."""
