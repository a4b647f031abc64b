"""Latency-budget search: the student shape that fits a budget measured on the serving runtime, and is most accurate.

``space`` lists the candidate shapes a teacher's family allows, ``latency`` measures each one built with random
weights, exported, fused and quantized as the recipe would, ``budget`` says which fit, and ``run`` ranks the
fitting ones by a short proxy distillation and fully trains the best few.
"""
