"""A model's training data against the problems it is evaluated on: which ones it has seen."""

from __future__ import annotations

from training._bench import load_problems
from training._overlap import model_overlap, training_overlap
from training._prompts import code_request
from training._trained_on import TrainedOn, write_trained_on


def _trained(task_ids: list[str], prompts: list[str]) -> TrainedOn:
    return TrainedOn(data="/data/sft.jsonl", sha256="0" * 64, records=len(prompts), task_ids=task_ids,
                     prompts=prompts)


def _chat_prompt(problem_id: str) -> str:
    """A training prompt as a student sees it: the evaluation's own wording around the problem."""
    problem = load_problems("mbpp", [problem_id])[0]
    return code_request(problem, chat=True, n=1, temperature=0.0, seed=0).messages[0][1]


def test_problems_are_found_by_task_id_or_by_text_in_a_training_prompt():
    problems = load_problems("mbpp", ["11", "12", "14", "16", "17"])
    trained = _trained(
        task_ids=["mbpp/12", "Mbpp/16#r1", "seed-7"],  # 12 by id alone; 16's evolution counts as 16
        prompts=[_chat_prompt("14"),  # 14 by its text, under another task id
                 "Write a function that returns the reverse of a string, keeping the case of each letter.",
                 "Plan a solution: sum the even numbers of a list."])
    assert training_overlap(problems, trained) == ["mbpp/12", "mbpp/14", "mbpp/16"]


def test_an_instruction_inside_other_words_is_found_too():
    problems = load_problems("mbpp", ["16", "17"])
    instruction = problems[1].prompt.strip('"\n').splitlines()[0]  # its sentence, without the shown assert
    assert instruction.startswith("Write a function that returns the perimeter of a square")
    prompt = f"Here is a task for you.\n{instruction.upper()}\nAnswer with code only."
    assert training_overlap(problems, _trained([], [prompt])) == ["mbpp/17"]


def test_a_local_model_reads_its_training_data_from_its_run(tmp_path):
    problems = load_problems("mbpp", ["11", "12"])
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    assert model_overlap(f"hf:{model}", problems) == (None, [])  # a model from elsewhere: no warning
    write_trained_on(tmp_path / "run", _trained(["mbpp/11"], []))
    assert model_overlap(str(model), problems) == (str(tmp_path / "run" / "training_data.json"), ["mbpp/11"])
    assert model_overlap(f"hf:{model}", problems)[1] == ["mbpp/11"]
    assert model_overlap("openai:m@http://127.0.0.1:9/v1", problems) == (None, [])
