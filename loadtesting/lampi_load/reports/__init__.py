"""What a finished search becomes: its report (markdown and a chart), and several searches side by side."""
