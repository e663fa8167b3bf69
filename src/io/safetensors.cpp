// PLACEHOLDER: replaced by the safetensors reader.
