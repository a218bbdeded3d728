"""SQLAlchemy models of the knowledge database (seeded from `kb/faq_fr.md`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()

eligibility = Table(
    "eligibilite",
    Base.metadata,
    Column("categorie_id", ForeignKey("categorie.id", ondelete="CASCADE"), primary_key=True),
    Column("scrutin_id", ForeignKey("scrutin.id", ondelete="CASCADE"), primary_key=True),
)


class KbVersion(Base):
    """Which version of the knowledge base file the tables hold."""

    __tablename__ = "kb_version"
    id = Column(Integer, primary_key=True)
    sha256 = Column(String(64), nullable=False)
    timezone = Column(String(64), nullable=False)
    loaded_at = Column(DateTime, nullable=False, default=datetime.utcnow)


class Evenement(Base):
    __tablename__ = "evenement"
    id = Column(Integer, primary_key=True)
    cle = Column(String(64), unique=True, nullable=False)
    libelle = Column(Text, nullable=False)
    debut = Column(DateTime)
    fin = Column(DateTime)
    debut_avec_heure = Column(Boolean, nullable=False, default=False)
    fin_avec_heure = Column(Boolean, nullable=False, default=False)


class Regle(Base):
    __tablename__ = "regle"
    id = Column(Integer, primary_key=True)
    cle = Column(String(64), unique=True, nullable=False)
    valeur = Column(Text, nullable=False)
    signification = Column(Text, nullable=False)


class Academie(Base):
    __tablename__ = "academie"
    id = Column(Integer, primary_key=True)
    rang = Column(Integer, nullable=False)
    nom = Column(String(64), unique=True, nullable=False)
    messagerie = Column(String(255), nullable=False)
    recuperation_mdp = Column(Text, nullable=False)
    domaine = Column(String(64), unique=True, nullable=False)
    alias = relationship("AcademieAlias", cascade="all, delete-orphan", order_by="AcademieAlias.id")
    departements = relationship(
        "Departement", cascade="all, delete-orphan", order_by="Departement.id"
    )


class AcademieAlias(Base):
    __tablename__ = "academie_alias"
    id = Column(Integer, primary_key=True)
    academie_id = Column(ForeignKey("academie.id", ondelete="CASCADE"), nullable=False)
    nom = Column(String(128), nullable=False)


class Departement(Base):
    __tablename__ = "departement"
    id = Column(Integer, primary_key=True)
    academie_id = Column(ForeignKey("academie.id", ondelete="CASCADE"), nullable=False)
    numero = Column(String(3), unique=True, nullable=False)
    nom = Column(String(64), nullable=False)


class Scrutin(Base):
    __tablename__ = "scrutin"
    id = Column(Integer, primary_key=True)
    rang = Column(Integer, nullable=False)
    sigle = Column(String(64), unique=True, nullable=False)
    intitule = Column(Text, nullable=False)
    role = Column(Text, nullable=False)
    categories = relationship(
        "Categorie", secondary=eligibility, back_populates="scrutins", order_by="Categorie.rang"
    )


class Categorie(Base):
    __tablename__ = "categorie"
    id = Column(Integer, primary_key=True)
    rang = Column(Integer, nullable=False)
    nom = Column(String(128), unique=True, nullable=False)
    scrutins = relationship(
        "Scrutin", secondary=eligibility, back_populates="categories", order_by="Scrutin.rang"
    )
    alias = relationship(
        "CategorieAlias", cascade="all, delete-orphan", order_by="CategorieAlias.id"
    )


class GroupeCategories(Base):
    """A name shared by several categories ("PsyEN"), with its other spellings."""

    __tablename__ = "groupe_categories"
    id = Column(Integer, primary_key=True)
    nom = Column(String(128), unique=True, nullable=False)
    alias = Column(Text, nullable=False)  # comma-separated


class CategorieAlias(Base):
    __tablename__ = "categorie_alias"
    id = Column(Integer, primary_key=True)
    categorie_id = Column(ForeignKey("categorie.id", ondelete="CASCADE"), nullable=False)
    nom = Column(String(128), nullable=False)


class Reponse(Base):
    __tablename__ = "reponse"
    id = Column(Integer, primary_key=True)
    rang = Column(Integer, nullable=False)
    cle = Column(String(64), unique=True, nullable=False)
    titre = Column(Text, nullable=False)
    gabarit = Column(Text, nullable=False)
    evenement_cle = Column(String(64))
