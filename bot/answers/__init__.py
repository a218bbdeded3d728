"""What the assistant says, in French, from the knowledge base.

One layer under the Rasa actions and the agents' copilot: `reply` decides the answer to an
understood message, `wording` and `chore_wording` word the facts, `handoff` holds why and how a
conversation goes to a person. It imports neither rasa_sdk, nor the actions, nor support.
"""

from bot.answers.replies import Reply, local_now, reply

__all__ = ["Reply", "local_now", "reply"]
