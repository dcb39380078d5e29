"""Generation backends, one module each, registered in `repro.generation.BACKENDS`:
`hf` ("transformers"), `vllm` ("vllm") and `openai` ("openai"). See `repro.generation` for the contract."""
