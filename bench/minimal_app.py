"""The start-up baseline: a minimal Gradio Blocks app (one Textbox), launched as a person
launches one. ``python bench/minimal_app.py --port P``."""

from __future__ import annotations

import argparse

import gradio as gr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.launch(server_name="127.0.0.1", server_port=args.port)


if __name__ == "__main__":
    main()
