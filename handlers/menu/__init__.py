"""The generation flow: model picker, option screens, photo and prompt input, Generate."""
