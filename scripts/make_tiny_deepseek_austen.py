"""Trains fixtures/tiny-deepseek-austen: a tiny DeepSeek-V3 (MLA with q/kv LoRA ranks, one shared expert, sigmoid
group routing with its correction bias, first layer dense) on emma.txt with transformers, as tiny-moe-austen was
made, so AWQ and GPTQ have real weights and routing to work on. Not run by CI (the fixture is committed).
usage: python scripts/make_tiny_deepseek_austen.py OUT_DIR [STEPS]"""
import json, math, os, random, sys, time
import torch
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM, PreTrainedTokenizerFast

out = sys.argv[1]
if os.path.exists(out):
    sys.exit(f"make_tiny_deepseek_austen: {out} exists; give a new directory")
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 600
here = os.path.dirname(os.path.abspath(__file__))
fx = os.path.join(here, "..", "fixtures")
torch.manual_seed(0); random.seed(0)
tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(fx, "tiny-moe-austen", "tokenizer.json"))
ids = tok(open(os.path.join(fx, "texts", "emma.txt"), encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
cfg = DeepseekV3Config(vocab_size=4096, hidden_size=192, intermediate_size=384, moe_intermediate_size=128,
                       num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=6, n_shared_experts=1,
                       n_routed_experts=8, num_experts_per_tok=2, n_group=2, topk_group=1, routed_scaling_factor=2.5,
                       norm_topk_prob=True, first_k_dense_replace=1, q_lora_rank=96, kv_lora_rank=64,
                       qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, max_position_embeddings=512,
                       rope_interleave=True, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0, pad_token_id=1)
model = DeepseekV3ForCausalLM(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
seq, batch = 256, 16
t0 = time.time()
for step in range(steps):
    starts = [random.randrange(0, len(ids) - seq - 1) for _ in range(batch)]
    x = torch.tensor([ids[s:s + seq] for s in starts])
    lr = 3e-3 * min(1, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
    for g in opt.param_groups: g["lr"] = lr
    loss = model(input_ids=x, labels=x).loss
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0 or step == steps - 1:
        print(f"step {step} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
model = model.to(torch.bfloat16)
model.save_pretrained(out)
tok.save_pretrained(out)
json.dump({"made_by": "scripts/make_tiny_deepseek_austen.py", "steps": steps, "batch": batch, "seq": seq,
           "train_text": "texts/emma.txt", "final_train_loss": loss.item(), "transformers": __import__("transformers").__version__,
           "torch": torch.__version__}, open(os.path.join(out, "training.json"), "w"), indent=1)
