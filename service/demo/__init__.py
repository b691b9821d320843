"""The demo models' runtime: the shapes network and data generator, their weights, the text models'
directories and the samples the dashboard offers. Training and measuring them are tools/demo (not installed)."""
