module github.com/grin-ai/grin/wasmhooks/pdk

go 1.24
