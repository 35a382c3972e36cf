"""Slurm: a session's runs on whole nodes a scheduler allocates.

kit does not reach the nodes itself. A short probe step (``srun``, one task per node) reads each
node's topology and checks that the session folder is the same folder there (the results must
be on a filesystem the nodes share). Each node is then an engine of the session, placed on its
own topology. When a batch of runs starts, one job per node is submitted (``sbatch
--exclusive``, that node, all its CPUs); the job runs ``kit _worker`` on the node, which runs its
share through the node's own engine (docker, podman or local; ``kit.campaign.worker``) and
writes each run's log and outcome into the session folder as it finishes. Each run starts on
the node when this host says its turn has come (a ``go`` file), so the session's order holds,
and runs of other engines on the same machine take turns with it. Here each run waits for its
outcome, streaming its log as it grows, and is judged as any other run. A job that ends early
fails its missing runs with Slurm's reason; Ctrl-C cancels the jobs (``scancel``).

Its modules: ``options`` (what a user sets: partition, nodes, the nodes' engine), ``commands``
(the probe, ``sbatch`` lines and job scripts as pure functions of the plan, and the parsers of
``squeue`` and ``scontrol`` output), ``share`` (the files the submitting host and a node's
worker exchange), ``engine`` (the engine: submit, follow, cancel).
"""
