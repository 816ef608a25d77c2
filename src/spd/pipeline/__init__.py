"""The pipeline's stages, each a plain function with typed arguments that the command line
(`spd.cli`) calls and that tests can call directly: train a target, decompose it, evaluate it,
then a run's summary, Table 1, figures and the results report. `layout` names the files of a run
folder, once for every stage."""
