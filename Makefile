# Two commands do all the set-up on a fresh clone:
#   make demo   - create .venv if missing, align and explain the shipped sample with the shipped default model, and
#                 ask the shipped oracle LFM2-Audio model a question about a held-out voice (answer + top word)
#   make test   - create .venv if missing, run the whole test suite
PYTHON ?= python3.12
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= demo_output

.PHONY: venv speech-tools demo test clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,corpus,ray,serve,voxtral,compare]'
	touch $@

demo: venv
	$(BIN)/sgpa align data_samples/slt_0000.wav --transcript-file data_samples/slt_0000.txt --plot -o $(OUT)
	$(BIN)/sgpa explain data_samples/slt_0000.wav --segments $(OUT)/slt_0000.segments.json -o $(OUT)
	$(BIN)/sgpa explain data_samples/slt_task_0000.wav -t "$$(cat data_samples/slt_task_0000.txt)" \
		--backend lfm2-audio --prompt "Which colour was mentioned?" -o $(OUT)

# Debian speech synthesisers for the corpus tests (installed when root + apt-get, else those tests skip).
speech-tools:
	@bash scripts/install_speech_tools.sh

test: venv speech-tools
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(OUT) .pytest_cache
