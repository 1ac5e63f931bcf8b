"""Settings, read from the environment in this one place.

With nothing set, the site runs on a laptop: SQLite, the in-memory channel layer, local media,
DEBUG on and a generated development secret. Production sets DJANGO_DEBUG=0 and the variables
that `required()` names; see deploy/env.example for all of them.
"""

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import dj_database_url
import redis
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.csp import CSP
from redis.driver_info import DriverInfo

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("STATE_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1 or 0).")


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def media_origins(s3: dict[str, Any]) -> list[str]:
    """The origins of an S3 bucket's URLs: MEDIA_ORIGINS if set, else those of its custom
    domain and of its endpoint (the endpoint's own, and the bucket's host under it), or of AWS
    (the bucket's global and regional hosts)."""
    if explicit := env_list("MEDIA_ORIGINS"):
        return explicit
    bucket, origins = s3["bucket_name"], []
    if s3["custom_domain"]:
        origins.append(f"https://{s3['custom_domain']}")
    if s3["endpoint_url"]:
        endpoint = urlsplit(s3["endpoint_url"])
        origins += [
            f"{endpoint.scheme}://{endpoint.netloc}",
            f"{endpoint.scheme}://{bucket}.{endpoint.netloc}",
        ]
    else:
        origins.append(f"https://{bucket}.s3.amazonaws.com")
        if s3["region_name"]:
            origins.append(f"https://{bucket}.s3.{s3['region_name']}.amazonaws.com")
    return origins


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def daily_at(name: str, default: str) -> str:
    """A time of day HH:MM (UTC) from the environment, as a daily cron expression."""
    value = os.environ.get(name) or default
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise ImproperlyConfigured(f"{name}={value!r} is not a time of day like 03:17.")
    return f"{int(match[2])} {int(match[1])} * * *"


def required(name: str, why: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: {why}")
    return value


def sentinel_address(item: str) -> tuple[str, int]:
    """host:port of a Sentinel (REDIS_SENTINELS), as redis-py takes it."""
    host, _, port = item.rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS entry {item!r} is not host:port.")
    return host.strip("[]"), int(port)


def redis_sentinel(
    sentinels: list[tuple[str, int]], *, master: str, url: str, sentinel_password: str | None
) -> dict[str, Any]:
    """A channels-redis `hosts` entry for a Sentinel-managed primary (its own keys only: the
    connection options are added by the caller); wire/ratelimit.py builds its clients from it
    too."""
    parsed = urlsplit(url)
    if parsed.scheme != "redis":
        raise ImproperlyConfigured(
            f"REDIS_URL scheme {parsed.scheme!r}: with REDIS_SENTINELS only redis:// is supported."
        )
    database = parsed.path.strip("/") or "0"
    if not database.isdigit():
        raise ImproperlyConfigured(f"REDIS_URL database {database!r} is not a number.")
    return {
        "master_name": master,
        "sentinels": sentinels,
        # A Sentinel that does not answer must not hold a reconnect up: the next one is asked.
        "sentinel_kwargs": {
            "socket_timeout": 1,
            "socket_connect_timeout": 1,
            "password": sentinel_password,
        },
        "db": int(database),
        "username": unquote(parsed.username) if parsed.username else None,
        "password": unquote(parsed.password) if parsed.password else None,
    }


def development_secret_key() -> str:
    """A secret kept under STATE_DIR, so that logins survive a restart of `make run`; readable
    by its owner only (whoever reads it can forge sessions and password-reset links)."""
    path = STATE_DIR / "dev-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with mode 0600 (O_EXCL: never through a link someone else put there).
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(get_random_secret_key())
    elif path.stat().st_mode & 0o077:
        # Written by an earlier version with the umask's mode (often 0644).
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)

if DEBUG:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or development_secret_key()
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS") or ["localhost", "127.0.0.1", "[::1]"]
else:
    SECRET_KEY = required(
        "DJANGO_SECRET_KEY", "production (DJANGO_DEBUG=0) needs a long random secret key."
    )
    ALLOWED_HOSTS = required(
        "DJANGO_ALLOWED_HOSTS",
        "production (DJANGO_DEBUG=0) needs the comma-separated host names the site answers to.",
    ).split(",")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # workers first: its runserver (daphne's, plus in-process workers) and runworker
    # (channels', plus back-pressure and recovery) override theirs; then daphne, whose
    # runserver overrides Django's.
    "workers",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "wire",
    "media_tasks",
    "chat",
    # The site itself (project/apps.py): metrics receivers, manage.py metrics_server.
    "project",
    # Failed log-ins, counted in the database (project/lockout.py).
    "axes",
]

MIDDLEWARE = [
    # First: it sees the answer every other middleware gave (an outage's end, in the log).
    "project.outages.outage_end",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a refused log-in into the 429 page.
    "axes.middleware.AxesMiddleware",
]

# The site's Content-Security-Policy, on every response (the admin's too): its pages need
# nothing but their own files and websocket (and the bucket on S3, below), so that even a
# markup bug in a page showing what other people wrote (chat, file names) could not run a
# script or load a tracking pixel.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    # data: for the site's empty favicon (base.html) and the gallery's tiny placeholders.
    "img-src": [CSP.SELF, "data:"],
    # 'self' covers ws:// and wss:// to the same host (CSP Level 3).
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wire.context.wire",
            ],
        },
    },
]

# Database: SQLite by default, anything dj-database-url parses when DATABASE_URL is set.
SQLITE_OPTIONS = {
    # The in-process workers write from other threads, and runworker from other processes:
    # wait for the lock instead of failing, and let readers go on while one writes (WAL).
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if os.environ.get("DATABASE_URL"):
    # Persistent connections serve the threads that live on (the websockets' database pool,
    # Channels' database thread, the workers); a request's thread, one a request, has its
    # connections closed when it ends (project/db.py).
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # psycopg prepares a statement after five runs (its default; Django turns preparing
        # off unless asked). Only the job runtime's per-job statements are prepared: they run
        # on server-binding cursors (workers.models.prepared_cursor); Django's own cursors
        # bind client-side, which never prepares but has no limit on parameters.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
else:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(STATE_DIR / "db.sqlite3"),
            "TEST": {"NAME": str(STATE_DIR / "test-db.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Named channels served by workers. The job runtime's queue names are these channels.
WORKER_CHANNELS = ["thumbnails", "compute", "chat-messages"]
# A worker channel holds one wake-up at most: a wake-up waiting there is taken after any job
# committed meanwhile, so it wakes a worker for that job too, and a worker that finds more
# than a batch wakes another (workers/runner.py). A send refused as full is no failure.
WAKEUP_CAPACITY = dict.fromkeys(WORKER_CHANNELS, 1)

# Channel layer: in-memory by default (one process), Redis when REDIS_URL is set.
REDIS_URL = os.environ.get("REDIS_URL", "")
# What redis-py tells Redis it is (CLIENT SETINFO), given to every client: left out, it reads
# its own version from the installed packages' metadata for every new connection, a scan of
# sys.path that cost 5 % of daphne's CPU in a reconnect storm (whose connects grow the pools).
REDIS_DRIVER_INFO = DriverInfo(name="redis-py", lib_version=redis.__version__)
# Redis behind Sentinel (README "Several machines"): the Sentinels say which server is the
# primary, and every Redis client here (channel layer, rate limits) asks them again after a
# failover. REDIS_URL then gives only the primary's password and database number.
REDIS_SENTINELS = [sentinel_address(item) for item in env_list("REDIS_SENTINELS")]
REDIS_SENTINEL: dict[str, Any] | None = None
if REDIS_SENTINELS:
    REDIS_SENTINEL = redis_sentinel(
        REDIS_SENTINELS,
        master=required(
            "REDIS_SENTINEL_MASTER", "REDIS_SENTINELS needs the name the Sentinels monitor."
        ),
        url=required(
            "REDIS_URL",
            "with REDIS_SENTINELS it gives the primary's password and database "
            "(redis://:<password>@<master name>/0; Sentinel says where the primary is).",
        ),
        sentinel_password=os.environ.get("REDIS_SENTINEL_PASSWORD") or None,
    )
if REDIS_URL:
    # channels-redis blocks 5 s in BZPOPMIN; redis-py 8 would otherwise time the socket out
    # at 5 s and kill idle consumers and workers. A Sentinel-managed primary takes the same
    # options (channels-redis passes them to its connection pool): without socket_timeout
    # there, a primary cut off mid-read would hang its readers for ever.
    redis_options = {
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        # redis-py's default of 100 fails a burst of websocket connects.
        "max_connections": int(env_float("REDIS_MAX_CONNECTIONS", 2000)),
        "health_check_interval": 15,
        "driver_info": REDIS_DRIVER_INFO,
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {**REDIS_SENTINEL, **redis_options}
                    if REDIS_SENTINEL
                    else {"address": REDIS_URL, **redis_options}
                ],
                "capacity": 1000,
                "channel_capacity": WAKEUP_CAPACITY,
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            # Channels 4.3's in-memory layer uses channel_capacity without compiling it (as
            # channels-redis does): it takes the compiled form, (pattern, capacity) pairs.
            "CONFIG": {
                "channel_capacity": [
                    (re.compile(re.escape(name) + r"\Z"), capacity)
                    for name, capacity in WAKEUP_CAPACITY.items()
                ]
            },
        }
    }

TASKS = {
    "default": {
        "BACKEND": "workers.backends.ChannelsBackend",
        "QUEUES": WORKER_CHANNELS,
    }
}

# The durable job runtime (workers/). Times in seconds.
JOBS: dict[str, Any] = {
    # How often a running job's row is touched, and after how long without a touch its
    # worker is taken for dead and the job handed to another worker.
    "HEARTBEAT_INTERVAL": env_float("JOBS_HEARTBEAT_INTERVAL", 5),
    "STALE_AFTER": env_float("JOBS_STALE_AFTER", 30),
    # A queued job still waiting this long after its wake-up gets a new wake-up (the first
    # may have been lost with Redis or with a killed worker's read-ahead).
    "REDISPATCH_AFTER": env_float("JOBS_REDISPATCH_AFTER", 15),
    # How often each worker looks for such jobs (one worker at a time does the sweep).
    "SWEEP_INTERVAL": env_float("JOBS_SWEEP_INTERVAL", 5),
    "DEFAULT_MAX_ATTEMPTS": int(env_float("JOBS_DEFAULT_MAX_ATTEMPTS", 3)),
    "DEFAULT_TIME_LIMIT": env_float("JOBS_DEFAULT_TIME_LIMIT", 300),
    "RETRY_BACKOFF": env_float("JOBS_RETRY_BACKOFF", 2),
    "RETRY_BACKOFF_MAX": env_float("JOBS_RETRY_BACKOFF_MAX", 300),
    # On SIGTERM, how long the running job may take to finish before it is handed back.
    "SHUTDOWN_GRACE": env_float("JOBS_SHUTDOWN_GRACE", 25),
    # A running job that was cancelled: how long its task has to stop by itself (it sees
    # context.cancelled) before it is interrupted.
    "CANCEL_GRACE": env_float("JOBS_CANCEL_GRACE", 10),
    # Recurring jobs (workers/schedules.py): name -> task path, cron expression (UTC) and
    # optional args/kwargs. Each due time runs once across all workers.
    "SCHEDULE": {
        # Expired sessions and finished jobs past KEEP_FINISHED_DAYS (project/tasks.py), daily.
        "housekeeping": {
            "task": "project.tasks.housekeeping",
            "cron": daily_at("JOBS_HOUSEKEEPING_AT", "03:17"),
        },
        # Chat messages past their room's retention (chat/tasks.py), hourly.
        "chat-retention": {"task": "chat.tasks.messages_expire", "cron": "41 * * * *"},
        # Resumable uploads past UPLOAD_RESUMABLE_EXPIRE (media_tasks/tasks.py), hourly.
        "partial-uploads": {
            "task": "media_tasks.tasks.partial_uploads_expire",
            "cron": "47 * * * *",
        },
    },
    # A worker claims as many jobs of a channel at once as its recent job durations say it
    # runs in BATCH_WINDOW (one at a time for slow jobs), at most MAX_BATCH; a batch whose job
    # outlasts the window hands its unstarted jobs back to the other workers.
    "BATCH_WINDOW": env_float("JOBS_BATCH_WINDOW", 0.05),
    "MAX_BATCH": int(env_float("JOBS_MAX_BATCH", 50)),
    # A process sends each channel at most one wake-up per WAKEUP_SPACING: the first at once,
    # the jobs enqueued in the meantime on one sent when the time is up. A burst of jobs thus
    # wakes a worker to claim them together (a wake-up costs far more than a job's share of
    # a batch), for at most this much more latency.
    "WAKEUP_SPACING": env_float("JOBS_WAKEUP_SPACING", 0.005),
    # The daily housekeeping (and `manage.py clearjobs`) deletes finished jobs older than this
    # that no upload needs.
    "KEEP_FINISHED_DAYS": env_float("JOBS_KEEP_FINISHED_DAYS", 30),
    # Progress events per job are sent at most this often (the last one always goes out).
    "PROGRESS_MIN_INTERVAL": env_float("JOBS_PROGRESS_MIN_INTERVAL", 0.2),
}

# `manage.py autoscale` (workers/autoscale.py; pipeline-autoscale.timer runs it on a host):
# pipeline-worker@<channel>-<n> instances per channel on that host. Times in seconds; each
# overridable by env AUTOSCALE_<NAME>, the channels by AUTOSCALE_CHANNELS.
AUTOSCALE_CHANNELS = env_list("AUTOSCALE_CHANNELS") or ["thumbnails", "compute"]
AUTOSCALE = {
    "MIN_INSTANCES": int(env_float("AUTOSCALE_MIN_INSTANCES", 1)),
    "MAX_INSTANCES": int(env_float("AUTOSCALE_MAX_INSTANCES", 4)),
    # Add instances when the oldest ready job has waited this long, or when more jobs are
    # ready than this per instance; at most STEP a run.
    "SCALE_UP_AGE": env_float("AUTOSCALE_SCALE_UP_AGE", 5),
    "READY_PER_INSTANCE": int(env_float("AUTOSCALE_READY_PER_INSTANCE", 20)),
    "STEP": int(env_float("AUTOSCALE_STEP", 2)),
    # Remove one a run once nothing is ready and no job has started for this long.
    "SCALE_DOWN_IDLE": env_float("AUTOSCALE_SCALE_DOWN_IDLE", 120),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Account forms (project/throttle.py, project/lockout.py). Times in seconds; each overridable
# by env ACCOUNTS_<NAME>.
ACCOUNTS = {
    # Log-in: after this many failures within LOGIN_COOLOFF, for one username (from any
    # address) or from one address (for any usernames), every log-in attempt of that username
    # or from that address is refused, the right password too, without checking the password,
    # until LOGIN_COOLOFF after the failure that reached the limit. Counted in the database.
    "LOGIN_FAILURES_PER_USERNAME": int(env_float("ACCOUNTS_LOGIN_FAILURES_PER_USERNAME", 5)),
    "LOGIN_FAILURES_PER_ADDRESS": int(env_float("ACCOUNTS_LOGIN_FAILURES_PER_ADDRESS", 20)),
    "LOGIN_COOLOFF": env_float("ACCOUNTS_LOGIN_COOLOFF", 900),
    # Other forms: posts per window, per client address (password change: per user), counted
    # in Redis when REDIS_URL is set (in this process while Redis does not answer).
    "SIGNUPS_PER_ADDRESS": int(env_float("ACCOUNTS_SIGNUPS_PER_ADDRESS", 5)),
    "SIGNUP_WINDOW": env_float("ACCOUNTS_SIGNUP_WINDOW", 3600),
    "PASSWORD_RESETS_PER_ADDRESS": int(env_float("ACCOUNTS_PASSWORD_RESETS_PER_ADDRESS", 5)),
    # Per e-mail address asked for too, so that nobody can flood one mailbox from many hosts.
    "PASSWORD_RESETS_PER_EMAIL": int(env_float("ACCOUNTS_PASSWORD_RESETS_PER_EMAIL", 3)),
    "PASSWORD_RESET_WINDOW": env_float("ACCOUNTS_PASSWORD_RESET_WINDOW", 3600),
    "PASSWORD_CHANGES_PER_USER": int(env_float("ACCOUNTS_PASSWORD_CHANGES_PER_USER", 10)),
    "PASSWORD_CHANGE_WINDOW": env_float("ACCOUNTS_PASSWORD_CHANGE_WINDOW", 3600),
}

# Django's database sessions, their read written out (project/sessions.py).
SESSION_ENGINE = "project.sessions"

# django-axes: the log-in lockout above. Its backend comes first: a refused attempt stops
# there, before UserBackend (Django's ModelBackend, project/auth.py) runs the password hasher.
AUTHENTICATION_BACKENDS = [
    "project.lockout.LockoutBackend",
    "project.auth.UserBackend",
]
AXES_HANDLER = "project.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The username's limit; LockoutHandler applies the address's own (see ACCOUNTS).
AXES_FAILURE_LIMIT = ACCOUNTS["LOGIN_FAILURES_PER_USERNAME"]
AXES_COOLOFF_TIME = timedelta(seconds=ACCOUNTS["LOGIN_COOLOFF"])
# Refused attempts are not counted again: a lockout ends LOGIN_COOLOFF after the failure that
# reached the limit, however long a flood goes on (and a flood writes nothing).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the count: else logging in to one's own account between guesses
# would reset the address's count.
AXES_RESET_ON_SUCCESS = False
# REMOTE_ADDR, which daphne --proxy-headers takes from nginx's X-Forwarded-For; never a header
# the client could set itself.
AXES_CLIENT_IP_CALLABLE = "project.throttle.client_address"
AXES_LOCKOUT_CALLABLE = "project.lockout.lockout_response"
# Failures are what the lockout needs; a row per successful log-in would grow for ever.
AXES_DISABLE_ACCESS_LOG = True

# E-mail (password reset). The console backend writes messages to the log: in production set
# an SMTP backend, or reset links end up in the journal.
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env_float("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "webmaster@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", STATE_DIR / "static"))
MEDIA_URL = os.environ.get("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", STATE_DIR / "media"))
# Originals keep their metadata (GPS too): only their owner fetches them, through the API
# (media_tasks/storage.py). Locally they live here, outside MEDIA_ROOT, which nobody serves;
# behind nginx the view hands them over with X-Accel-Redirect to this internal location.
ORIGINALS_ROOT = Path(os.environ.get("ORIGINALS_ROOT", STATE_DIR / "originals"))
ORIGINALS_X_ACCEL_REDIRECT = os.environ.get(
    "ORIGINALS_X_ACCEL_REDIRECT", "" if DEBUG else "/internal/originals/"
)
# On S3, the signed URL of an original is good for this many seconds.
ORIGINALS_URL_EXPIRE = int(env_float("ORIGINALS_URL_EXPIRE", 60))

MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "local")
if MEDIA_STORAGE == "local":
    media_backend = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {}}
    originals_backend = {"BACKEND": "media_tasks.storage.OriginalsStorage", "OPTIONS": {}}
elif MEDIA_STORAGE == "s3":
    # django-storages reads only the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    # AWS_SESSION_TOKEN) from the environment itself; the rest it takes from settings alone.
    media_backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": required(
                "AWS_STORAGE_BUCKET_NAME", "MEDIA_STORAGE=s3 needs the bucket to store media in."
            ),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            # None leaves the region to boto3, which reads AWS_DEFAULT_REGION.
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            # botocore presigns S3 URLs with the legacy SigV2 unless told otherwise, which
            # newer AWS regions and some S3-compatible servers refuse.
            "signature_version": os.environ.get("AWS_S3_SIGNATURE_VERSION") or "s3v4",
            "custom_domain": os.environ.get("AWS_S3_CUSTOM_DOMAIN") or None,
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": env_bool("AWS_QUERYSTRING_AUTH", True),
        },
    }
    # The same bucket, but always signed, short-lived URLs: never a public custom domain.
    originals_backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **media_backend["OPTIONS"],  # type: ignore[dict-item]
            "custom_domain": None,
            "querystring_auth": True,
            "querystring_expire": ORIGINALS_URL_EXPIRE,
        },
    }
else:
    raise ImproperlyConfigured(f"MEDIA_STORAGE={MEDIA_STORAGE!r} is not one of: local, s3.")
if MEDIA_STORAGE == "s3":
    # Where the pages load renditions from and post files straight to (media_tasks/direct.py):
    # the bucket's origins, allowed by the Content-Security-Policy beside the site's own.
    bucket_origins = media_origins(cast(dict[str, Any], media_backend["OPTIONS"]))
    SECURE_CSP["img-src"] = [*SECURE_CSP["img-src"], *bucket_origins]
    SECURE_CSP["connect-src"] = [*SECURE_CSP["connect-src"], *bucket_origins]
STORAGES = {
    "default": media_backend,
    "originals": originals_backend,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "project.storage.ModuleManifestStaticFilesStorage"
        )
    },
}

# Uploads (media_tasks/).
UPLOAD_MAX_BYTES = int(env_float("UPLOAD_MAX_BYTES", 25 * 1024 * 1024))
UPLOAD_MAX_PIXELS = int(env_float("UPLOAD_MAX_PIXELS", 50_000_000))
# Animations: at most this many frames (40 s at 25 frames a second), and at most this many
# canvas pixels decoded over all frames (Pillow composes every frame on the whole canvas), by
# default what four pictures at the pixel limit cost: a few seconds of a worker.
UPLOAD_MAX_FRAMES = int(env_float("UPLOAD_MAX_FRAMES", 1000))
UPLOAD_MAX_TOTAL_PIXELS = int(env_float("UPLOAD_MAX_TOTAL_PIXELS", 4 * UPLOAD_MAX_PIXELS))
# Per user: files in any hour, and bytes stored in all.
UPLOADS_PER_HOUR = int(env_float("UPLOADS_PER_HOUR", 300))
UPLOAD_QUOTA_BYTES = int(env_float("UPLOAD_QUOTA_BYTES", 5 * 1024**3))
# Uploads one web process checks at once, and how long (seconds) one waits for its turn.
UPLOAD_CHECKS_AT_ONCE = int(env_float("UPLOAD_CHECKS_AT_ONCE", 2))
UPLOAD_CHECK_WAIT = env_float("UPLOAD_CHECK_WAIT", 10)
# Resumable uploads (tus): where their bytes wait until complete (a folder every web process
# of a site shares), and how long (seconds) one may pause before it is deleted.
UPLOAD_PARTIALS_ROOT = Path(os.environ.get("UPLOAD_PARTIALS_ROOT", STATE_DIR / "partials"))
UPLOAD_RESUMABLE_EXPIRE = env_float("UPLOAD_RESUMABLE_EXPIRE", 24 * 3600)
# Uploads straight to S3 (MEDIA_STORAGE=s3): how long (seconds) a signed POST form is good for.
DIRECT_UPLOAD_EXPIRE = int(env_float("DIRECT_UPLOAD_EXPIRE", 600))
# Longest sides of the renditions; never upscaled.
THUMBNAIL_SIZES = [int(size) for size in env_list("THUMBNAIL_SIZES") or ["1600", "800", "320"]]
# Formats of each size, best first (the page offers them in this order): THUMBNAIL_FORMATS for
# every size, THUMBNAIL_FORMATS_<size> for one (e.g. THUMBNAIL_FORMATS_1600=webp,jpeg). Of
# avif, webp, jpeg; chosen from the README's measured table.
THUMBNAIL_FORMATS = {
    size: [
        name.upper()
        for name in env_list(f"THUMBNAIL_FORMATS_{size}")
        or env_list("THUMBNAIL_FORMATS")
        or ["avif", "webp"]
    ]
    for size in THUMBNAIL_SIZES
}
for size, names in THUMBNAIL_FORMATS.items():
    if not set(names) <= {"AVIF", "WEBP", "JPEG"}:
        raise ImproperlyConfigured(
            f"THUMBNAIL_FORMATS of {size}: {names} are not of avif, webp, jpeg"
        )
# Perceptual-hash distance (of 64 bits) under which two uploads count as similar.
SIMILAR_MAX_DISTANCE = int(env_float("SIMILAR_MAX_DISTANCE", 10))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = 20

# Websocket frames from browsers are small JSON; daphne refuses anything larger.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 64 * 1024
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = 64 * 1024

# Bounds of every websocket (wire/sockets.py, project/server.py). Times in seconds.
WEBSOCKETS = {
    # Bytes sent to a socket whose client stopped reading, past which it is closed (4408).
    "SEND_BUFFER_MAX": int(env_float("WEBSOCKET_SEND_BUFFER_MAX", 1024 * 1024)),
    # The same, for all the sockets of one server process together: past it, the socket whose
    # send goes over is closed (4408), however many stopped reading.
    "SEND_BUFFER_TOTAL_MAX": int(env_float("WEBSOCKET_SEND_BUFFER_TOTAL_MAX", 64 * 1024 * 1024)),
    # Open sockets of one user in one server process; connects of one user per window.
    "PER_USER": int(env_float("WEBSOCKET_PER_USER", 20)),
    "CONNECT_RATE": int(env_float("WEBSOCKET_CONNECT_RATE", 60)),
    "CONNECT_WINDOW": env_float("WEBSOCKET_CONNECT_WINDOW", 60),
    # How often an open socket checks that its session still logs its user in.
    "SESSION_RECHECK": env_float("WEBSOCKET_SESSION_RECHECK", 300),
    # Frames larger than this are refused unread (daphne caps them at 64 KiB before that).
    "FRAME_MAX_BYTES": int(env_float("WEBSOCKET_FRAME_MAX_BYTES", 16 * 1024)),
}

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    # Load balancers and Prometheus probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(env_float("DJANGO_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a promise to browsers that is slow to take back (months): opt in.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # check --deploy's "not preloaded" warning: off here by choice, not by oversight.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    USE_X_FORWARDED_HOST = env_bool("DJANGO_USE_X_FORWARDED_HOST", False)

# /metrics (project/health.py) answers requests from these networks (REMOTE_ADDR, which daphne
# --proxy-headers takes from nginx's X-Forwarded-For), or bearing METRICS_TOKEN. Set the
# variable empty to allow the token only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = (
    env_list("METRICS_ALLOWED_NETWORKS")
    if "METRICS_ALLOWED_NETWORKS" in os.environ
    else ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
)

# prometheus-client's multiprocess mode (project/metrics.py): the directory where every process
# of a host writes its metrics, so that one scrape reports them all. The systemd units set it
# to one directory they share, under /run (emptied at boot). prometheus-client reads the
# variable itself; it is checked here so that a missing directory stops a start naming it.
# Unset (the embedded default), each process reports only its own metrics.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a directory: create it "
        "(the systemd units' RuntimeDirectory= does), or unset it."
    )

LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # One line per record, key=value: journald keeps it as it is and grep finds it.
        "line": {
            "()": "project.logformat.OneLineFormatter",
            "format": "level=%(levelname)s logger=%(name)s pid=%(process)d %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default config gives "django" a plain console handler of its own; one
        # handler, the structured one, is enough.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "daphne": {"level": "WARNING"},
        # django-axes logs every log-in attempt at INFO; lockouts and failures are warnings.
        "axes": {"level": "WARNING"},
    },
}

# Chat (chat/). Times in seconds; each overridable by env CHAT_<NAME>.
CHAT = {
    # Messages sent on connect, and per page of older history.
    "HISTORY_SIZE": int(env_float("CHAT_HISTORY_SIZE", 50)),
    # A reconnect that missed more than this gets the latest page and a reset instead (and
    # pages back with chat.history): what a connect sends stays small.
    "REPLAY_MAX": int(env_float("CHAT_REPLAY_MAX", 200)),
    "BODY_MAX_CHARS": int(env_float("CHAT_BODY_MAX_CHARS", 2000)),
    # Messages per user per window, across all processes when REDIS_URL is set.
    "RATE_LIMIT": int(env_float("CHAT_RATE_LIMIT", 10)),
    "RATE_WINDOW": env_float("CHAT_RATE_WINDOW", 10),
    # Pages of older history per user per window, and rooms a user may create per hour.
    "HISTORY_RATE": int(env_float("CHAT_HISTORY_RATE", 30)),
    "HISTORY_WINDOW": env_float("CHAT_HISTORY_WINDOW", 10),
    "ROOMS_PER_HOUR": int(env_float("CHAT_ROOMS_PER_HOUR", 20)),
    # Each server touches its connections' presence this often; one untouched for
    # PRESENCE_TTL belongs to a dead server and is dropped. Changes go out in batches.
    "PRESENCE_HEARTBEAT": env_float("CHAT_PRESENCE_HEARTBEAT", 20),
    "PRESENCE_TTL": env_float("CHAT_PRESENCE_TTL", 60),
    "PRESENCE_BATCH": env_float("CHAT_PRESENCE_BATCH", 0.5),
    "PRESENCE_BATCH_MAX": env_float("CHAT_PRESENCE_BATCH_MAX", 5.0),
    # A hub sends a room's notices of one kind (presence, typing) to at most this many of its
    # connections a second: in a bigger room it gathers them longer, up to the _MAX.
    "NOTICE_SENDS": int(env_float("CHAT_NOTICE_SENDS", 500)),
    # The names a connection is sent of who is in the room (with how many in all), then only
    # the changes.
    "PRESENCE_LIST": int(env_float("CHAT_PRESENCE_LIST", 100)),
    # How long a server holds a message that arrived ahead of a missing one before it reads
    # the gap from the database.
    "GAP_WAIT": env_float("CHAT_GAP_WAIT", 1.0),
    # Read markers per user per RATE_WINDOW. A connection sends at most one typing notice
    # per TYPING_INTERVAL; a hub sends who is typing at most every TYPING_BATCH (less often in
    # a big room, NOTICE_SENDS) and tells the room's other hubs who typed at its connections
    # once per TYPING_BATCH, and a name not repeated within TYPING_EXPIRE has stopped (the page
    # drops it by itself: TYPING_INTERVAL + TYPING_BATCH + TYPING_BATCH_MAX must stay below it).
    "READ_RATE": int(env_float("CHAT_READ_RATE", 30)),
    "TYPING_INTERVAL": env_float("CHAT_TYPING_INTERVAL", 2.0),
    "TYPING_BATCH": env_float("CHAT_TYPING_BATCH", 0.5),
    "TYPING_BATCH_MAX": env_float("CHAT_TYPING_BATCH_MAX", 2.0),
    "TYPING_EXPIRE": env_float("CHAT_TYPING_EXPIRE", 5.0),
}
