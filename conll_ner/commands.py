"""Commands that the project's messages tell a user to run, in one place.

tests/test_documented_commands.py checks every command that the README, the
docs and the project's messages show, with the versions the requirements
install. With weasel 1.0 and click 8.2 or newer, a `spacy project run` line
with a --vars option right after the command's name fails before anything
runs: that option is taken as the project folder. So a line that sets vars
names the folder first, `.`.
"""

# Train on the CPU when the train step finds no GPU
CPU_TRAINING = "spacy project run all . --vars.gpu_id -1"
# The GPU install: torch and cupy for CUDA 13 (see requirements-gpu.txt)
GPU_INSTALL = "pip install -r requirements-gpu.txt"
# Checks the GPU install, one line per check
GPU_CHECK = "spacy project run check-gpu"
