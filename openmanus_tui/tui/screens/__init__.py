"""The workbench's screens: modal and full screens pushed over the main one (approval, args
editor, rules and rule editor, history tree, compare, help, confirm and text prompts)."""
