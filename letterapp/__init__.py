"""letterapp: open letters, sign-ons and the final PDF."""

import os

from babel.dates import format_date
from flask import Flask
from flask_wtf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from . import auth, cli, config, db, health, i18n, limits, mail, manage, public, security, users
from .letters import SLUG

csrf = CSRFProtect()


class SlugConverter(BaseConverter):
    regex = SLUG


def letter_date(day, letter) -> str:
    """A date written the way the letter's language writes it: `August 11, 2023`."""
    return format_date(day, format="long", locale=letter.language.replace("-", "_"))


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, template_folder="../templates")
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.development_secret_key(app.instance_path)

    # INFO by default: the console says where development email went, for example.
    app.logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    app.url_map.converters["slug"] = SlugConverter
    app.add_template_filter(letter_date)
    db.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    limits.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(health.bp)
    cli.init_app(app)
    app.cli.add_command(users.user_cli)
    if app.config["PROXY_FIX_X_FOR"] or app.config["PROXY_FIX_X_PROTO"]:
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=app.config["PROXY_FIX_X_FOR"],
            x_proto=app.config["PROXY_FIX_X_PROTO"],
        )
    return app
