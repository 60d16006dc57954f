"""Settings: what every command and function can be told, each setting declared once with its default, help and
range or choices.

| module | what |
|---|---|
| `settings.py` | the machinery: `setting(...)`, `Section` (converts and checks its settings, then its own rules), `build` (flat names -> a config), YAML loading, argparse flags |
| `sections.py` | the sections the commands compose: `Training`, `Student`, `Objective`, `Relations`, `DistilBERTLoss`, `EmbeddingLoss`, `Corpus`, `Task`, `OutputLoss`, `QAWindows` |
| `commands.py` | one config per command: `DistillConfig`, `StudentConfig`, `FinetuneConfig`, `EvaluateConfig`, `ExportConfig`, `BenchConfig`, `ReportConfig` |
"""

from minilm.config.commands import (BenchConfig, DistillConfig, EvaluateConfig, ExportConfig, FinetuneConfig,
                                    ReportConfig, StudentConfig)
from minilm.config.sections import (COMBINABLE, DEVICES, OBJECTIVES, PACKAGED_TEACHER, PRECISIONS, QA_MAX_LENGTH,
                                    SENTENCE_MAX_LENGTH, Corpus, DistilBERTLoss, DistillTask, EmbeddingLoss,
                                    FinetuneTraining, Objective, OutputLoss, QAWindows, Relations, Student, Task,
                                    Training)
from minilm.config.settings import build, flatten, load_config

__all__ = ["DistillConfig", "StudentConfig", "FinetuneConfig", "EvaluateConfig", "ExportConfig", "BenchConfig",
           "ReportConfig", "Training", "FinetuneTraining", "Student", "Objective", "Relations", "DistilBERTLoss",
           "EmbeddingLoss", "Corpus", "Task", "DistillTask", "OutputLoss", "QAWindows", "build", "flatten",
           "load_config", "PACKAGED_TEACHER", "PRECISIONS", "DEVICES", "OBJECTIVES", "COMBINABLE",
           "SENTENCE_MAX_LENGTH", "QA_MAX_LENGTH"]
