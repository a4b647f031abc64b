"""Knowledge distillation: student construction, the loss registry, the cached-teacher trainer."""
