"""`saliency-service audit PATH`: explain every image (or text) under a folder with one model and method, here
or through a running server, and write one self-contained HTML report.

inputs.py collects the inputs and their true labels (class sub-folders); explain.py sends them in batches;
aggregate.py keeps per-class mean maps, examples, region fractions and token scores; pictures.py and report.py
draw the report; command.py is the command line; demo_data.py writes demo folders to audit.
"""
