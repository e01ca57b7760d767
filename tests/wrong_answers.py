"""Plausible wrong answers, one per exercise, that a grading test must reject.

WRONG_ANSWERS[lesson][answer cell grade_id] is the source a student might submit in that cell. The grading
tests put each into an otherwise correct notebook and check that its test cell (`<grade_id>_tests`) loses
its points, while every other exercise keeps them.
"""

WRONG_ANSWERS: dict[str, dict[str, str]] = {
    "01-lora-theory": {
        # forgets rsLoRA's square root: alpha / r in both cases
        "lora_scaling": (
            "def lora_scaling(lora_alpha, r, use_rslora=False):\n"
            "    return lora_alpha / r\n"),
        # forgets the alpha / r scale on the LoRA branch
        "lora_forward": (
            "def lora_forward(x, W0, A, B, lora_alpha, r):\n"
            "    return x @ W0.T + (x @ A.T) @ B.T\n"),
        # the paper's square-matrix shortcut 2 * d * r, wrong for non-square layers
        "count_lora_params": (
            "def count_lora_params(d_in, d_out, r):\n"
            "    return 2 * d_in * r\n"),
        # ignores grouped-query attention: k_proj and v_proj taken as hidden -> hidden
        "lora_params_for": (
            "def lora_params_for(config, r, target_modules):\n"
            "    h, i = config.hidden_size, config.intermediate_size\n"
            "    shapes = {'q_proj': (h, h), 'k_proj': (h, h), 'v_proj': (h, h), 'o_proj': (h, h),\n"
            "              'gate_proj': (h, i), 'up_proj': (h, i), 'down_proj': (i, h)}\n"
            "    return config.num_hidden_layers * sum(r * sum(shapes[m]) for m in target_modules)\n"),
        # counts the frozen parameters as the total
        "trainable_and_total": (
            "def trainable_and_total(model):\n"
            "    params = list(model.parameters())\n"
            "    return (sum(p.numel() for p in params if p.requires_grad),\n"
            "            sum(p.numel() for p in params if not p.requires_grad))\n"),
        # torch's default tolerance instead of the rtol asked for
        "effective_rank": (
            "def effective_rank(matrix, rtol=1e-4):\n"
            "    return int(torch.linalg.matrix_rank(matrix.float()))\n"),
        # rsLoRA's scale taken as alpha / r: a factor 1/4 instead of 1/2
        "check_your_understanding": (
            "def check_your_understanding():\n"
            "    return {'alpha_16_to_32': 2.0, 'rank_4_to_16_rslora': 0.25, 'logit_change_at_init': 0.0}\n"),
    },
}
