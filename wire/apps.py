from django.apps import AppConfig


class WireConfig(AppConfig):
    name = "wire"
    verbose_name = "Errors, close codes and websockets shared by the site"

    def ready(self) -> None:
        from wire import signals  # noqa: F401 (connects the receivers)
