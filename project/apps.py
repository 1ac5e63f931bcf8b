import atexit

from django.apps import AppConfig
from django.conf import settings
from django.tasks.signals import task_finished


class ProjectConfig(AppConfig):
    """The site itself: connects the metrics to the job runtime and to the process's end.

    Here rather than in workers/: the runtime sends Django's own Tasks signals and knows
    nothing of Prometheus. Here rather than at an import: ready() runs once in every process
    that sets Django up (daphne, runworker, runserver, manage.py), after the models load.
    """

    name = "project"
    verbose_name = "Site"

    def ready(self) -> None:
        from project import metrics

        task_finished.connect(metrics.job_finished, dispatch_uid="project.metrics.job_finished")
        if settings.PROMETHEUS_MULTIPROC_DIR:
            # Gauges a killed process with this pid left behind are not this process's.
            metrics.process_exited()
            atexit.register(metrics.process_exited)
