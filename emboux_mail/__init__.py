from . import models
from . import wizards
from . import controllers
from .services import redaction  # masks API tokens in every log line
