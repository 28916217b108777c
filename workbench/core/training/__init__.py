"""Training: the Trainer and what it reports (:mod:`.trainer`, :mod:`.events`), optimizers and schedules
(:mod:`.optim`), evaluation (:mod:`.evaluation`), loading a model for inference (:mod:`.session`) and faults
(:mod:`.faults`).  Import from the modules; this package imports nothing, so the torch-free :mod:`.events` stays
torch-free.
"""
